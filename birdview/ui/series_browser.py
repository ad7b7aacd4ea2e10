"""`SeriesBrowser`: the scanned catalog as a tree, patient → study → series.

Clicking (or pressing Enter on) a series asks for it to be loaded. Files the scan could not
read are listed under a "Could not read (N)" node, each with its reason. A series that has
been opened gets a small thumbnail of its middle slice.
"""

from __future__ import annotations

import os

import numpy as np
import qtawesome as qta
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QFont, QIcon, QPixmap
from PySide6.QtWidgets import QHeaderView, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget
from superqt.utils import signals_blocked

from birdview.core.display import apply_window
from birdview.core.geometry import Plane, extract_slice
from birdview.core.io.catalog import Catalog, SeriesEntry
from birdview.core.session import Session
from birdview.ui._observe import observe
from birdview.ui.slice_view import to_qimage

__all__ = ["SeriesBrowser"]

_ENTRY_ROLE = Qt.ItemDataRole.UserRole
_THUMBNAIL_PX = 32


class SeriesBrowser(QWidget):
    """Tree of the session's catalog."""

    series_requested = Signal(object)  # SeriesEntry

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self._items: dict[str, QTreeWidgetItem] = {}
        self._thumbnails: dict[str, QIcon] = {}
        self.tree = QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Series", "Modality", "Images"])
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.setIndentation(14)
        self.tree.setMinimumWidth(260)
        self.tree.setIconSize(QSize(_THUMBNAIL_PX, _THUMBNAIL_PX))
        self.tree.setUniformRowHeights(False)
        self.tree.itemClicked.connect(self._on_item_clicked)
        self.tree.itemActivated.connect(self._on_item_clicked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree)
        observe(self, session.events.catalog, self._on_catalog_changed)
        observe(self, session.events.entry, self._on_entry_changed)
        observe(self, session.events.volume, self._on_volume_changed)
        observe(self, session.events.phi_hidden, self._on_catalog_changed)
        self._on_catalog_changed()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(320, 400)

    def entries(self) -> list[SeriesEntry]:
        """The series in tree order."""
        return [item.data(0, _ENTRY_ROLE) for item in self._items.values()]

    def request_relative(self, step: int) -> None:
        """Ask for the next (``step`` = 1) or previous (-1) series of the catalog."""
        entries = self.entries()
        if not entries:
            return
        keys = [e.key for e in entries]
        current = self._session.entry
        index = keys.index(current.key) if current is not None and current.key in keys else -1
        target = min(max(index + step, 0), len(entries) - 1)
        if target != index:
            self.series_requested.emit(entries[target])

    # -- session -> tree ---------------------------------------------------------------------

    def _on_catalog_changed(self, *_: object) -> None:
        self.tree.clear()
        self._items.clear()
        catalog = self._session.catalog
        if catalog is not None:
            self._fill(catalog)
        self.tree.expandAll()
        self._on_entry_changed()

    def _on_entry_changed(self, *_: object) -> None:
        entry = self._session.entry
        item = self._items.get(entry.key) if entry is not None else None
        with signals_blocked(self.tree):
            if item is not None:
                self.tree.setCurrentItem(item)
            else:
                self.tree.clearSelection()

    def _on_volume_changed(self, *_: object) -> None:
        volume, entry = self._session.volume, self._session.entry
        if volume is None or entry is None or entry.key not in self._items:
            return
        if entry.key not in self._thumbnails:
            self._thumbnails[entry.key] = _thumbnail(volume, self._session)
        self._items[entry.key].setIcon(0, self._thumbnails[entry.key])

    def _on_item_clicked(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        entry = item.data(0, _ENTRY_ROLE)
        if isinstance(entry, SeriesEntry):
            self.series_requested.emit(entry)

    # -- building ----------------------------------------------------------------------------

    def _fill(self, catalog: Catalog) -> None:
        patients: dict[str, QTreeWidgetItem] = {}
        studies: dict[tuple[str, str], QTreeWidgetItem] = {}
        series_icon = qta.icon("mdi6.image-multiple-outline")
        for entry in sorted(catalog.entries, key=_sort_key):
            patient = patients.get(entry.patient)
            if patient is None:
                name = entry.patient or _no_patient(entry)
                if self._session.phi_hidden:  # presenter mode: patients numbered, not named
                    name = f"Patient {len(patients) + 1}"
                patient = QTreeWidgetItem([name, "", ""])
                patient.setIcon(0, qta.icon("mdi6.account"))
                _bold(patient)
                self.tree.addTopLevelItem(patient)
                patients[entry.patient] = patient
            study = studies.get((entry.patient, entry.study))
            if study is None:
                label = entry.study or ("(no study)" if entry.kind == "dicom" else "Images")
                label = f"Study {len(studies) + 1}" if self._session.phi_hidden else label
                study = QTreeWidgetItem(patient, [label, "", ""])
                study.setIcon(0, qta.icon("mdi6.folder-outline"))
                studies[(entry.patient, entry.study)] = study
            item = QTreeWidgetItem(
                study,
                [entry.description or "(no description)", entry.modality, str(entry.n_slices)],
            )
            item.setData(0, _ENTRY_ROLE, entry)
            item.setIcon(0, self._thumbnails.get(entry.key, series_icon))
            item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if entry.warnings:
                # Geometry traps (gaps, tilt, uneven spacing) must be seen before reading.
                item.setIcon(1, qta.icon("mdi6.alert", color="#d08020"))
                for column in range(3):
                    item.setToolTip(column, "\n".join(entry.warnings))
            self._items[entry.key] = item
        if catalog.problems:
            self._add_problems(catalog)

    def _add_problems(self, catalog: Catalog) -> None:
        node = QTreeWidgetItem([f"Could not read ({len(catalog.problems)})", "", ""])
        node.setIcon(0, qta.icon("mdi6.alert-circle-outline", color="#d08020"))
        _bold(node)
        self.tree.addTopLevelItem(node)
        for problem in catalog.problems:
            child = QTreeWidgetItem(node, [os.path.basename(problem.path) or problem.path, "", ""])
            child.setToolTip(0, problem.message)
            child.setIcon(0, qta.icon("mdi6.file-alert-outline"))
        node.setExpanded(len(catalog.problems) <= 10)


def _no_patient(entry: SeriesEntry) -> str:
    return "(no patient name)" if entry.kind == "dicom" else "Files"


def _sort_key(entry: SeriesEntry) -> tuple:
    number = entry.series_number if entry.series_number is not None else 1 << 30
    return (entry.patient, entry.study, number, entry.description)


def _bold(item: QTreeWidgetItem) -> None:
    font = QFont(item.font(0))
    font.setBold(True)
    item.setFont(0, font)


def _thumbnail(volume, session: Session) -> QIcon:
    """The middle slice of the acquisition plane, small, through the session's window."""
    plane = session.main_plane if session.main_plane in Plane else Plane.AXIAL
    image = extract_slice(volume, plane, session.slice_count(plane) // 2)
    rows, cols = image.shape[:2]
    step = max(1, max(rows, cols) // (2 * _THUMBNAIL_PX))
    grey = apply_window(np.asarray(image[::step, ::step]), session.window)
    qimage, _buffer = to_qimage(grey)
    pixmap = QPixmap.fromImage(qimage).scaled(
        _THUMBNAIL_PX,
        _THUMBNAIL_PX,
        Qt.AspectRatioMode.KeepAspectRatio,
        Qt.TransformationMode.SmoothTransformation,
    )
    return QIcon(pixmap)
