"""`SlabControls`: the thick-slab mode (off, MIP, MinIP, average) and its thickness in mm.

The choice applies to every slice view (all three planes); each view projects the slab centred
on the slice it shows (`birdview.core.slab`) and names it in its corner text.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QWidget

from birdview.core.slab import MAX_THICKNESS_MM, SLAB_MODES, Slab
from birdview.ui.overlays import Overlay

__all__ = ["SlabControls", "with_slab_line"]

DEFAULT_THICKNESS_MM = 10.0


def with_slab_line(overlay: Overlay, slab: Slab) -> Overlay:
    """``overlay`` with the slab named above the slice line ("MIP 10.0 mm"), so a projection
    is never mistaken for a plain slice."""
    if slab.active:
        overlay.bottom_left.insert(0, slab.label())
    return overlay


class SlabControls(QObject):
    """A mode selector and a thickness box, applied to ``views``.

    Signals:
        changed(slab): the user (or `set_slab`) chose another mode or thickness.
    """

    changed = Signal(object)

    def __init__(self, views: Iterable, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._views = list(views)
        self.mode_box = QComboBox()
        for mode, name in SLAB_MODES.items():
            self.mode_box.addItem(name, mode)
        self.mode_box.setToolTip("Thick slab: maximum (MIP), minimum (MinIP) or average")
        self.mode_box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.thickness_box = QDoubleSpinBox()
        self.thickness_box.setRange(0.5, MAX_THICKNESS_MM)
        self.thickness_box.setDecimals(1)
        self.thickness_box.setSingleStep(1.0)
        self.thickness_box.setSuffix(" mm")
        self.thickness_box.setValue(DEFAULT_THICKNESS_MM)
        self.thickness_box.setToolTip("Slab thickness along the view's normal (mm)")
        self.thickness_box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.mode_box.currentIndexChanged.connect(self._apply)
        self.thickness_box.valueChanged.connect(self._apply)
        self._apply()

    @property
    def slab(self) -> Slab:
        return Slab(self.mode_box.currentData(), self.thickness_box.value())

    def set_slab(self, mode: str, thickness_mm: float) -> None:
        """Choose a mode ("off", "mip", "minip", "average") and a thickness, as the user would."""
        self.thickness_box.setValue(float(thickness_mm))
        self.mode_box.setCurrentIndex(self.mode_box.findData(Slab(mode).mode))

    def add_view(self, view) -> None:
        self._views.append(view)
        self._apply_to(view, self.slab)

    def _apply(self, *_: object) -> None:
        slab = self.slab
        self.thickness_box.setEnabled(slab.active)
        for view in self._views:
            self._apply_to(view, slab)
        self.changed.emit(slab)

    @staticmethod
    def _apply_to(view, slab: Slab) -> None:
        if view.slab != slab:
            view.slab = slab
            view.refresh()
