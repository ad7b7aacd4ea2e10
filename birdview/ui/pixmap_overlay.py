"""A pixmap item over a `SliceView`'s image showing an RGBA array, as the label and mask layers
draw (scene units are millimetres, as for the image, so the item is scaled by the pixel size)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap, QTransform
from PySide6.QtWidgets import QGraphicsPixmapItem

__all__ = ["overlay_item", "show_rgba"]


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
