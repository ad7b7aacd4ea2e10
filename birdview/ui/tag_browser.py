"""`TagBrowser`: the DICOM header of the current slice's file, with a search box.

It follows the session's cursor (the axial slice, which is the acquired slice of an axial
series); headers are read lazily, only while the browser is visible, and cached per file.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtWidgets import QHeaderView, QLabel, QLineEdit, QTableView, QVBoxLayout, QWidget
from superqt.utils import qdebounced

from birdview.core import geometry
from birdview.core.geometry import Plane
from birdview.core.phi import is_identifying_tag
from birdview.core.session import Session
from birdview.core.volume import SliceSource
from birdview.ui._observe import observe

__all__ = ["TagBrowser", "TagTableModel"]

_COLUMNS = ("Tag", "Name", "VR", "Value")
_CACHE_SIZE = 64
# The plane whose slices run along index axis i, j, k.
_PLANE_ALONG = (Plane.SAGITTAL, Plane.CORONAL, Plane.AXIAL)
_MAX_VALUE_CHARS = 200

Index = QModelIndex | QPersistentModelIndex


_NAME_WIDTH_MAX = 260


class TagTableModel(QAbstractTableModel):
    """Rows of (tag, name, VR, value), nested elements indented by depth."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[str, str, str, str]] = []

    def set_rows(self, rows: list[Any]) -> None:
        self.beginResetModel()
        self._rows = [_cells(row) for row in rows]
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(_COLUMNS)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self._rows[index.row()][index.column()]
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return _COLUMNS[section]
        return None


class TagBrowser(QWidget):
    """Search box, a note on what is shown, and the table."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self._cache: OrderedDict[SliceSource, list[Any]] = OrderedDict()
        self._shown: SliceSource | None = None
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search tag, name or value")
        self.search.setClearButtonEnabled(True)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.model = TagTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 4)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        # Long values (device names, software versions) wrap onto more lines instead of
        # being cut; rows take the height their text needs.
        self.table.setWordWrap(True)
        self.table.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        for column, width in ((0, 84), (1, 160), (2, 32)):
            self.table.setColumnWidth(column, width)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.search)
        layout.addWidget(self.note)
        layout.addWidget(self.table)
        self.search.textChanged.connect(self._on_search_changed)
        self._follow_later = qdebounced(self.follow, timeout=60, parent=self)
        observe(self, session.events.cursor_ijk, self._on_slice_changed)
        observe(self, session.events.volume, self._on_slice_changed)
        observe(self, session.events.phi_hidden, self._on_phi_changed)

    def current_source(self) -> tuple[SliceSource | None, str]:
        """The file of the current slice, and a note when it is only an approximation."""
        volume, entry = self._session.volume, self._session.entry
        if volume is None:
            return None, "Nothing open."
        source = volume.source_at(self._session.cursor_ijk)
        if source is not None and len(volume.sources) > 1:
            n = self._session.cursor_ijk[volume.source_axis]
            # Counted in reading order (axial from the head down), like the views' overlay.
            place = geometry.reading_position(volume, _PLANE_ALONG[volume.source_axis], n)
            return source, f"Slice {place + 1} of {len(volume.sources)}"
        if len(volume.sources) == 1:
            return volume.sources[0], "Single file"
        if entry is not None and entry.paths:
            return SliceSource(entry.paths[0]), "First file of the series"
        return None, "No file behind this image."

    def follow(self) -> None:
        """Show the header of the current slice's file (if the browser is visible)."""
        if not self.isVisible():
            return
        source, note = self.current_source()
        self.note.setText(note)
        if source == self._shown:
            return
        self._shown = source
        rows = [] if source is None else self._rows_of(source)
        if self._session.phi_hidden:  # presenter mode: no names, IDs or dates on screen
            rows = [r for r in rows if not is_identifying_tag(str(r.tag), str(r.vr))]
        self.model.set_rows(rows)
        self._fit_name_column()
        if source is not None and self.model.rowCount() == 0:
            self.note.setText(f"{note} · no DICOM header")

    def _fit_name_column(self) -> None:
        """The name column as wide as its longest name (up to a limit past which it wraps)."""
        metrics = self.table.fontMetrics()
        names = (self.model.index(r, 1).data() or "" for r in range(self.model.rowCount()))
        widest = max((metrics.horizontalAdvance(n) for n in names), default=0)
        # At most 45 % of what the tag and VR columns leave: the value keeps room to wrap.
        room = self.table.viewport().width() - self.table.columnWidth(0) - self.table.columnWidth(2)
        self.table.setColumnWidth(1, max(90, min(widest + 16, _NAME_WIDTH_MAX, int(room * 0.45))))

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._fit_name_column()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(480, 600)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self.follow()

    def _on_slice_changed(self, *_: object) -> None:
        self._follow_later()

    def _on_phi_changed(self, *_: object) -> None:
        self._shown = None  # the same file's rows again, filtered or not
        self.follow()

    def _on_search_changed(self, text: str) -> None:
        self.proxy.setFilterFixedString(text)

    def _rows_of(self, source: SliceSource) -> list[Any]:
        rows = self._cache.get(source)
        if rows is None:
            from birdview.core.io import tag_rows

            rows = tag_rows(source)
            self._cache[source] = rows
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        self._cache.move_to_end(source)
        return rows


def _cells(row: Any) -> tuple[str, str, str, str]:
    tag = row.tag
    if isinstance(tag, int):
        tag = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
    indent = "  " * int(getattr(row, "depth", 0) or 0)
    value = str(row.value)
    if len(value) > _MAX_VALUE_CHARS:
        value = value[:_MAX_VALUE_CHARS] + "…"
    return (str(tag), indent + str(row.name), str(row.vr), value)
