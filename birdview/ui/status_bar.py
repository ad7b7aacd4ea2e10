"""`StatusBar`: messages, load progress with a Cancel button, and the value under the mouse."""

from __future__ import annotations

import qtawesome as qta
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar, QToolButton, QWidget

from birdview.core.geometry import Plane
from birdview.core.session import Session
from birdview.core.slab import Slab, slab_value
from birdview.ui._observe import observe

__all__ = ["StatusBar"]


class StatusBar(QStatusBar):
    """The main window's status bar."""

    cancel_requested = Signal()

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self.cursor_label = QLabel()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(180)
        self.progress.setTextVisible(True)
        self.cancel_button = QToolButton()
        self.cancel_button.setIcon(qta.icon("mdi6.close-circle-outline"))
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Cancel loading")
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.addPermanentWidget(self.cursor_label)
        self.addPermanentWidget(self.progress)
        self.addPermanentWidget(self.cancel_button)
        self.set_busy(False)
        observe(self, session.events.volume, self._on_volume_changed)

    def set_busy(self, busy: bool) -> None:
        """Show (busy) or hide the progress bar and the Cancel button."""
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if busy:
            self.progress.setRange(0, 0)  # indeterminate until the first progress report

    def set_progress(self, done: int, total: int) -> None:
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(done)

    def show_voxel(
        self, ijk: tuple[int, int, int] | None, plane: Plane | None = None, slab: Slab | None = None
    ) -> None:
        """Show the value of voxel ``ijk`` of the open volume (the one under the mouse, fed by
        the views' ``hovered``); None clears it. When the view of ``plane`` shows ``slab``,
        the value is the slab's projection there (what the user sees), named after the slab."""
        volume = self._session.volume
        if volume is None or ijk is None:
            self.cursor_label.clear()
            return
        i, j, k = ijk
        projected = plane is not None and slab is not None and slab.active
        value = slab_value(volume, plane, ijk, slab) if projected else volume.voxels[k, j, i]
        # Hounsfield units only where the values are calibrated: CT (pictures are "OT").
        unit = " HU" if volume.modality.upper() == "CT" else ""
        if volume.is_rgb:
            text = "RGB " + ", ".join(f"{v:.0f}" for v in value)
        else:
            text = f"{float(value):.6g}{unit}"
        where = f"voxel ({i}, {j}, {k})" + (f"  {slab.label()}" if projected else "")
        self.cursor_label.setText(f"{where}  {text}")

    def _on_volume_changed(self, *_: object) -> None:
        self.cursor_label.clear()  # the mouse has not moved over the new volume yet
