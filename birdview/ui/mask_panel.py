"""`MaskPanel`: the study's masks as a table — shown/hidden, colour, name, where it came from,
and the numbers a radiologist reads (volume in mL, axial long/short axis in mm, mean ± SD HU) —
with the segmentation flow's buttons (segment, propagate, cancel, masks from the answer, text
prompt) and the brush tools.

Numbers are computed in a thread 0.3 s after the last change and not while a propagation
streams in (each is a pass over the whole volume); the row shows "…" meanwhile. The progress
bar moves at most every 0.1 s while slices stream in (each move repaints it at once), besides
its first and last step.
"""

from __future__ import annotations

import logging
import math

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import create_worker

from birdview.core.masks import measure
from birdview.core.session import Session
from birdview.ui._observe import observe
from birdview.ui.mask_controls import MaskControls
from birdview.ui.segment_controls import VOXTELL_MISSING, SegmentControls

__all__ = ["MaskPanel"]

logger = logging.getLogger(__name__)

COLUMNS = ("Mask", "Source", "mL", "Long × short mm", "Mean ± SD")
PROGRESS_INTERVAL_MS = 100


class MaskPanel(QWidget):
    """The Masks dock's content."""

    _measured = Signal(object, object)  # [(mask id, version, MaskMeasures)], volume

    def __init__(
        self,
        session: Session,
        controls: MaskControls,
        segment: SegmentControls,
        tool_actions: dict,
    ) -> None:
        super().__init__()
        self._session, self._controls, self._segment = session, controls, segment
        self._masks = controls.masks
        self._filling = False
        self.measuring = 0  # numbers being computed in threads
        self._measured.connect(self._on_measured)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemChanged.connect(self._on_item_changed)
        self.table.itemSelectionChanged.connect(self._on_row_selected)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m slices")
        self.progress.hide()
        self._progress_shown: tuple[int, int, str] | None = None  # done, total, unit on the bar
        self._progress_next: tuple[int, int, str] | None = None  # waiting for the timer
        self._progress_timer = QTimer(self, singleShot=True, interval=PROGRESS_INTERVAL_MS)
        self._progress_timer.timeout.connect(self._show_progress)
        self.text_edit = QLineEdit()
        self.text_edit.setPlaceholderText("Text prompt, e.g. liver (SAM3, VoxTell)")
        self.text_edit.returnPressed.connect(self._on_text)
        self.text_note = QLabel()
        self.text_note.setWordWrap(True)
        self.text_note.setStyleSheet("color: #c80;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(self._buttons(tool_actions))
        layout.addWidget(self.progress)
        text_row = QHBoxLayout()
        text_row.addWidget(self.text_edit)
        go = QPushButton("Segment text")
        go.clicked.connect(self._on_text)
        text_row.addWidget(go)
        layout.addLayout(text_row)
        layout.addWidget(self.text_note)
        layout.addWidget(self.table)
        self._numbers_timer = QTimer(self, singleShot=True, interval=300)
        self._numbers_timer.timeout.connect(self.update_numbers)
        observe(self, self._masks.changed, self._rebuild)
        observe(self, self._masks.data_changed, self._on_data)
        observe(self, self._masks.selection_changed, self._show_selection)
        segment.busy_changed.connect(self._on_busy)
        segment.progress.connect(self._on_progress)
        self._rebuild()

    def _buttons(self, tool_actions: dict) -> QGridLayout:
        # Two columns: four across made the dock 580 px wide and squeezed the image view.
        grid = QGridLayout()
        c, s = self._controls, self._segment
        actions = (
            s.segment_action,
            s.propagate_action,
            s.answer_action,
            s.cancel_action,
            tool_actions["brush"],
            tool_actions["eraser"],
            c.undo_action,
            c.redo_action,
            c.delete_action,
        )
        for index, action in enumerate(actions):
            button = QToolButton()
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            grid.addWidget(button, index // 2, index % 2)
        hint = QLabel("Brush size: [ and ]")
        grid.addWidget(hint, len(actions) // 2, 1)
        return grid

    # -- table ----------------------------------------------------------------------------------

    def _rebuild(self, *_: object) -> None:
        self._filling = True
        self.table.setRowCount(len(self._masks))
        for row, entry in enumerate(self._masks):
            name = QTableWidgetItem(_swatch(entry.colour), entry.name)
            name.setFlags(
                Qt.ItemFlag.ItemIsEnabled
                | Qt.ItemFlag.ItemIsSelectable
                | Qt.ItemFlag.ItemIsUserCheckable
                | Qt.ItemFlag.ItemIsEditable
            )
            name.setCheckState(Qt.CheckState.Checked if entry.visible else Qt.CheckState.Unchecked)
            name.setData(Qt.ItemDataRole.UserRole, entry.id)
            self.table.setItem(row, 0, name)
            self.table.setItem(row, 1, _cell(entry.source))
            for col in range(2, len(COLUMNS)):
                self.table.setItem(row, col, _cell("…"))
        self._filling = False
        self._show_selection(self._masks.selected)
        self._numbers_timer.start()

    def _on_data(self, *_: object) -> None:
        if not self._segment.busy:
            self._numbers_timer.start()

    def update_numbers(self) -> None:
        """Fill each row's mL, axes and mean ± SD: those not known yet are computed in a
        thread (a pass over the whole volume: about 0.4 s for a mask on every slice of the
        sample CT, far over the 50 ms the UI may stall) and filled in when they arrive."""
        volume = self._session.volume
        if volume is None or self._masks.shape != volume.shape:
            return
        jobs = [(e.id, e.version, e.data.copy()) for e in self._masks if not e.cached_measures()]
        if jobs:
            self.measuring += 1
            create_worker(self._measure_all, jobs, volume, _start_thread=True)
        self._fill(volume)

    def _measure_all(self, jobs: list, volume) -> None:
        """In a worker thread, on copies of the masks; never raises."""
        try:
            found = [(i, v, measure(d.astype(bool), volume)) for i, v, d in jobs]
        except Exception:  # noqa: BLE001 - reported as missing numbers, not a crash
            logger.exception("mask numbers failed")
            found = []
        self._measured.emit(found, volume)

    def _on_measured(self, found: list, volume) -> None:
        self.measuring -= 1
        if volume is not self._session.volume:
            return
        for mask_id, version, measures in found:
            try:
                self._masks.get(mask_id).remember_measures(version, measures)
            except KeyError:
                continue  # deleted meanwhile
        self._fill(volume)

    def _fill(self, volume) -> None:
        unit = "HU" if volume.modality == "CT" else ""
        self._filling = True
        for row, entry in enumerate(self._masks):
            found = entry.cached_measures()
            if found is None:  # not known for these voxels yet: not an older mask's numbers
                for col in range(2, len(COLUMNS)):
                    self.table.setItem(row, col, _cell("…"))
                continue
            d = found.diameters
            axes = f"{d.long_mm:.1f} × {d.short_mm:.1f}" if d is not None else "–"
            mean = f"{found.mean:.0f} ± {found.sd:.0f} {unit}" if math.isfinite(found.sd) else "–"
            for col, text in ((2, f"{found.volume_ml:.2f}"), (3, axes), (4, mean.strip())):
                self.table.setItem(row, col, _cell(text))
        self._filling = False

    def row_text(self, row: int) -> list[str]:
        """What row ``row`` shows, column by column (for tests and the screenshot)."""
        return [self.table.item(row, col).text() for col in range(len(COLUMNS))]

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() != 0:
            return
        mask_id = item.data(Qt.ItemDataRole.UserRole)
        self._masks.set_visible(mask_id, item.checkState() == Qt.CheckState.Checked)
        if item.text() and item.text() != self._masks.get(mask_id).name:
            self._masks.rename(mask_id, item.text())

    def _on_row_selected(self) -> None:
        if self._filling:
            return
        rows = self.table.selectionModel().selectedRows()
        if rows:
            item = self.table.item(rows[0].row(), 0)
            self._masks.select(item.data(Qt.ItemDataRole.UserRole))

    def _show_selection(self, mask_id: object) -> None:
        ids = [e.id for e in self._masks]
        if mask_id in ids and self.table.currentRow() != ids.index(mask_id):
            self._filling = True
            self.table.selectRow(ids.index(mask_id))
            self._filling = False

    # -- flow -----------------------------------------------------------------------------------

    def _on_text(self) -> None:
        if not self._segment.segment_text(self.text_edit.text()):
            if not self._segment.text_engine():
                self.text_note.setText(VOXTELL_MISSING)

    def _on_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self._progress_shown = None  # a new run's first step shows at once
        if not busy:
            self._numbers_timer.start()

    def _on_progress(self, done: int, total: int) -> None:
        """Show the step now if it is the first, the last or of a new count (VoxTell's
        patches after the slices), else when the bar last moved 0.1 s ago."""
        step = (done, total, self._segment.progress_unit)
        shown = self._progress_shown
        first_or_last = shown is None or step[1:] != shown[1:] or done >= total
        self._progress_next = step
        if first_or_last or not self._progress_timer.isActive():
            self._show_progress()

    def _show_progress(self) -> None:
        step, self._progress_next = self._progress_next, None
        if step is None:
            return
        done, total, unit = step
        self.progress.setFormat(f"%v / %m {unit}")
        self.progress.setMaximum(total)
        self.progress.setValue(done)
        self._progress_shown = step
        self._progress_timer.start()


def _cell(text: str) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    return item


def _swatch(colour) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor(*colour))
    return QIcon(pixmap)
