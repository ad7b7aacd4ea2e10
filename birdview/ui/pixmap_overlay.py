"""`SliceLayer`: a pixmap item over a `SliceView`'s image showing an RGBA slice, as the label
and mask layers draw (scene units are millimetres, as for the image, so the item is scaled by
the pixel size). A layer redraws only when its key (what it shows) changed, and not while its
view is hidden."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QImage, QPixmap, QTransform
from PySide6.QtWidgets import QGraphicsPixmapItem

from birdview.core import geometry
from birdview.core.session import Session
from birdview.core.volume import Volume

__all__ = ["SliceLayer", "overlay_item", "show_rgba"]


def overlay_item(view, z: float) -> QGraphicsPixmapItem:
    """An empty pixmap item in ``view``'s scene at height ``z`` (the image is 0)."""
    item = QGraphicsPixmapItem()
    item.setZValue(z)
    item.setTransformationMode(Qt.TransformationMode.FastTransformation)  # crisp edges
    view.scene().addItem(item)
    return item


def show_rgba(
    item: QGraphicsPixmapItem, rgba: np.ndarray, pixel_mm: tuple[float, float]
) -> np.ndarray:
    """Show ``rgba`` (rows, cols, 4) uint8 on ``item``, each pixel ``pixel_mm`` wide and high;
    returns the contiguous array the image was made from (the layer keeps it)."""
    rgba = np.ascontiguousarray(rgba)
    rows, cols = rgba.shape[:2]
    image = QImage(rgba.data, cols, rows, rgba.strides[0], QImage.Format.Format_RGBA8888)
    item.setPixmap(QPixmap.fromImage(image))
    item.setTransform(QTransform.fromScale(*pixel_mm))
    return rgba


class SliceLayer(QObject):
    """Draws over ``view`` at height ``z`` what `_render` makes of the shown slice.

    Subclasses say whether there is anything to draw on ``volume`` (`_shows`), what the shown
    picture depends on (`_key_of`) and the picture itself (`_render`)."""

    def __init__(self, view, session: Session, z: float) -> None:
        super().__init__(view)
        self._view, self._session = view, session
        self._key: tuple | None = None
        self.rgba: np.ndarray | None = None  # what is shown now
        self.redraws = 0  # for the responsiveness bench
        self.item = overlay_item(view, z)
        view.layers.append(self)

    def refresh(self, *_: object) -> None:
        volume = self._session.volume
        if volume is None or not self._shows(volume):
            self._show(None, (1.0, 1.0))
            return
        if not self._view.isVisible():
            self._key = None
            return
        plane = self._view.plane
        index = self._session.slice_index(plane)
        key = self._key_of(volume, plane, index)
        if key == self._key:
            return
        self._key = key
        rgba = self._render(plane, index)
        if rgba is not None and rgba is self.rgba:
            return  # the subclass found the shown picture still right: no repaint
        self._show(rgba, geometry.pixel_size_mm(volume, plane))

    def clear(self) -> None:
        """Show nothing until the next refresh (e.g. while the view previews another study)."""
        self._show(None, (1.0, 1.0))

    def _shows(self, volume: Volume) -> bool:
        raise NotImplementedError

    def _key_of(self, volume: Volume, plane, index: int) -> tuple:
        raise NotImplementedError

    def _render(self, plane, index: int) -> np.ndarray:
        """The RGBA picture of slice ``index``; ``self.rgba`` itself when what is shown is
        still right (the key changed, the picture did not)."""
        raise NotImplementedError

    def _show(self, rgba: np.ndarray | None, pixel_mm: tuple[float, float]) -> None:
        if rgba is None:
            self._key = None
            if self.rgba is not None:
                self.rgba = None
                self.item.setPixmap(QPixmap())
            return
        self.rgba = show_rgba(self.item, rgba, pixel_mm)
        self.redraws += 1
        self._view.viewport().update()
