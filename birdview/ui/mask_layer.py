"""`MaskLayer`: the study's `MaskSet` drawn over one `SliceView`, above the open label map (both
stay visible: the label map is a file's reference, the masks are what the user made), and the
mask brush and eraser on that view.

Drawing follows `LabelLayer`: a pixmap item in the view's scene, redrawn only when what it shows
changed (the key holds every mask's version). Masks streaming in from a propagation change the
set many times a second; a change marks the layer dirty and one zero-time timer redraws, so a
burst of slices costs one redraw per event-loop turn, and only when the shown slice changed.

The brush: with the "brush" or "eraser" tool, a left drag paints a disk of `brush_radius`
pixels on the selected mask of the shown slice; the whole stroke is one undo step.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QPixmap

from birdview.core import geometry
from birdview.core.mask_set import MaskSet
from birdview.core.session import Session
from birdview.ui._observe import observe
from birdview.ui.pixmap_overlay import overlay_item, show_rgba

__all__ = ["BRUSH_TOOLS", "MaskLayer", "disk_stroke"]

BRUSH_TOOLS = ("brush", "eraser")
_OPACITY = 0.5


def disk_stroke(shape: tuple[int, int], points, radius: float) -> np.ndarray:
    """Pixels of ``shape`` whose centres lie within ``radius`` pixels of the segments joining
    ``points`` ((x, y) pixel-edge coordinates): what one brush stroke covers."""
    rows, cols = shape
    yy, xx = np.mgrid[:rows, :cols]
    cx, cy = xx + 0.5, yy + 0.5
    out = np.zeros(shape, bool)
    pts = [tuple(map(float, p)) for p in points]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:] or pts, strict=False):
        dx, dy = x1 - x0, y1 - y0
        length2 = dx * dx + dy * dy
        t = 0.0 if length2 == 0 else np.clip(((cx - x0) * dx + (cy - y0) * dy) / length2, 0, 1)
        out |= (cx - (x0 + t * dx)) ** 2 + (cy - (y0 + t * dy)) ** 2 <= radius * radius
    return out


class MaskLayer(QObject):
    """Draws ``masks`` over ``view`` and paints on it with the brush tools."""

    def __init__(self, view, session: Session, masks: MaskSet, brush) -> None:
        super().__init__(view)
        self._view, self._session, self._masks, self._brush = view, session, masks, brush
        self._key: tuple | None = None
        self._stroke: list[tuple[float, float]] | None = None
        self.rgba: np.ndarray | None = None
        self.redraws = 0  # for the responsiveness bench
        self.item = overlay_item(view, 1.5)  # over the label map, under the boxes
        self._timer = QTimer(self, singleShot=True, interval=0)
        self._timer.timeout.connect(self.refresh)
        observe(self, masks.changed, self._soon)
        observe(self, masks.data_changed, self._soon)
        view.layers.append(self)
        view.viewport().installEventFilter(self)

    def _soon(self, *_: object) -> None:
        self._timer.start()

    def refresh(self, *_: object) -> None:
        volume, masks = self._session.volume, self._masks
        if volume is None or masks.shape != volume.shape or not len(masks):
            self._show(None, (1.0, 1.0))
            return
        if not self._view.isVisible():
            self._key = None
            return
        plane = self._view.plane
        index = self._session.slice_index(plane)
        key = (
            volume.token,
            plane,
            index,
            tuple((e.id, e.version, e.visible, e.colour) for e in masks),
        )
        if key == self._key:
            return
        self._key = key
        labels = masks.label_slice(plane, index)
        table = np.zeros((len(masks) + 1, 4), np.uint8)
        for n, entry in enumerate(masks, start=1):
            table[n] = (*entry.colour, round(255 * _OPACITY))
        self._show(table[labels], geometry.pixel_size_mm(volume, plane))

    def clear(self) -> None:
        """Show nothing until the next refresh (e.g. while the view previews another study)."""
        self._key = None
        self._show(None, (1.0, 1.0))

    def _show(self, rgba: np.ndarray | None, pixel_mm: tuple[float, float]) -> None:
        if rgba is None:
            if self.rgba is not None:
                self._key, self.rgba = None, None
                self.item.setPixmap(QPixmap())
            return
        self.rgba = show_rgba(self.item, rgba, pixel_mm)
        self.redraws += 1
        self._view.viewport().update()

    # -- the brush ------------------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        kind = event.type()
        if kind not in _MOUSE or getattr(self._view, "tool", "") not in BRUSH_TOOLS:
            return False
        if kind == QEvent.Type.MouseButtonPress:
            if event.button() != Qt.MouseButton.LeftButton or not self._brush.can_paint():
                return False
            self._view.setFocus(Qt.FocusReason.MouseFocusReason)
            self._stroke = [self._view.viewport_to_image(event.position())]
            return True
        if self._stroke is None:
            return False
        if kind == QEvent.Type.MouseMove:
            self._stroke.append(self._view.viewport_to_image(event.position()))
            return True
        points, self._stroke = self._stroke, None
        self._brush.paint(self._view.plane, self._session.slice_index(self._view.plane), points)
        return True


_MOUSE = (QEvent.Type.MouseButtonPress, QEvent.Type.MouseMove, QEvent.Type.MouseButtonRelease)
