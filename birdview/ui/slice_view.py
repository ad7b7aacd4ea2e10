"""`SliceView`: one plane of the session in a QGraphicsView.

Mouse (the defaults of `birdview.core.mouse_map`, routed by `MouseGestures`): left-drag
the active tool (window/level: horizontal = width, vertical = level; the box tool draws the
user's box), left click moves the cursor (and picks the answer box under it), middle-drag pans,
right-drag and Ctrl+wheel zoom, wheel scrolls, double-click asks to become the main view.
Keys: arrows ±1, PgUp/PgDn ±10, Home/End, F fit, R reset, Delete removes the drawn box.
Paging follows radiology's reading order, as in every PACS: Home shows the first slice
(axial: the most cranial; coronal: the most anterior; sagittal: the patient's rightmost),
and wheel towards the user, ↓, → and PgDn go on (axial: towards the feet). The
session's slice indices keep their own order; only the paging maps onto it.
The view reports the voxel under the mouse (``hovered``) for the status bar.
Scene units are millimetres, so anisotropic pixels are drawn with the right aspect.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPixmap,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import QFrame, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView, QWidget
from superqt.utils import qthrottled

from birdview.core import geometry
from birdview.core.assistant import Assistant
from birdview.core.display import Window, apply_window, auto_window
from birdview.core.geometry import Plane
from birdview.core.mouse_map import MouseMap
from birdview.core.session import Session
from birdview.core.slab import Slab, slab_image
from birdview.ui._observe import observe
from birdview.ui.box_layer import BoxLayer
from birdview.ui.mouse_gestures import MouseGestures
from birdview.ui.overlays import (
    Overlay,
    overlay_for,
    paint_crosshair,
    paint_frame,
    paint_hint,
    paint_overlay,
)
from birdview.ui.presenter_words import plain_overlay
from birdview.ui.slab_controls import with_slab_line

__all__ = ["SliceView", "to_qimage"]

_ZOOM_LIMITS = (0.05, 64.0)  # screen px per image px
_KEY_STEPS = {
    Qt.Key.Key_Up: -1,
    Qt.Key.Key_Left: -1,
    Qt.Key.Key_Down: 1,
    Qt.Key.Key_Right: 1,
    Qt.Key.Key_PageUp: -10,
    Qt.Key.Key_PageDown: 10,
}


def to_qimage(image: np.ndarray) -> tuple[QImage, np.ndarray]:
    """A QImage over a uint8 (rows, cols) or (rows, cols, 3) array, without copying.

    Returns the image and the buffer it points into; keep the buffer alive as long as the
    image is used.
    """
    buffer = np.ascontiguousarray(image, dtype=np.uint8)
    rows, cols = buffer.shape[:2]
    fmt = QImage.Format.Format_Grayscale8 if buffer.ndim == 2 else QImage.Format.Format_RGB888
    return QImage(buffer.data, cols, rows, buffer.strides[0], fmt), buffer


EMPTY_HINT = "Drop a DICOM folder, .zip, NIfTI or image here\nor use File → Open (Ctrl+O)"


class SliceView(QGraphicsView):
    """Shows the slice of ``plane`` through the session's cursor."""

    main_requested = Signal(object)  # Plane: the user double-clicked this view
    hovered = Signal(object)  # (i, j, k) of the voxel under the mouse, or None off the image

    def __init__(
        self,
        session: Session,
        plane: Plane,
        *,
        compact: bool = False,
        assistant: Assistant | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._session = session
        self._plane = Plane(plane)
        self._compact = compact
        self._layer = BoxLayer(assistant) if assistant is not None else None
        self.tool = "window"  # or "box": what a left drag does
        self.presenter = False
        self.show_crosshair = False
        self.slab = Slab()  # a thick-slab projection instead of the slice (SlabControls sets it)
        self._rendered_key: tuple | None = None
        self._buffer: np.ndarray | None = None
        self._pixel_mm = (1.0, 1.0)
        self._preview = False
        self._fitted = True
        self.gestures = MouseGestures(self)
        self._hover_pos: QPoint | None = None  # where the mouse rests over the viewport
        self._font = QFont(self.font())
        self._font.setPixelSize(12 if compact else 14)

        self.setScene(QGraphicsScene(self))
        self._item = QGraphicsPixmapItem()
        self._item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene().addItem(self._item)
        self.setBackgroundBrush(QColor(0, 0, 0))
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.viewport().setMouseTracking(True)  # move events without a button: the hover value
        self.setMinimumSize(120, 120)
        self._set_window_throttled = qthrottled(self._session.set_window, timeout=15, parent=self)
        self.layers: list = []  # scene layers drawn over the image (labels), refreshed with it

        observe(self, session.events.volume, self._on_volume_changed)
        observe(self, session.events.window, self._on_window_changed)
        observe(self, session.events.cursor_ijk, self._on_cursor_changed)
        if assistant is not None:
            for signal in (
                assistant.events.revision,
                assistant.events.user_box,
                assistant.events.selected,
            ):
                observe(self, signal, self._on_boxes_changed)
        self.refresh()

    # -- public ------------------------------------------------------------------------------

    @property
    def plane(self) -> Plane:
        return self._plane

    @property
    def mouse_map(self) -> MouseMap:
        return self.gestures.mouse_map

    @mouse_map.setter
    def mouse_map(self, mouse_map: MouseMap) -> None:
        self.gestures.mouse_map = mouse_map

    def set_plane(self, plane: Plane) -> None:
        plane = Plane(plane)
        if plane is not self._plane:
            self._plane = plane
            self.refresh(fit=True)

    def zoom(self) -> float:
        """Screen pixels per image pixel (horizontally)."""
        return self.transform().m11() * self._pixel_mm[0]

    def overlay(self) -> Overlay:
        if self._preview:
            return Overlay(bottom_left=["Loading…"])
        overlay = overlay_for(
            self._session, self._plane, self.zoom(), compact=self._compact, anonymise=self.presenter
        )
        return with_slab_line(plain_overlay(overlay) if self.presenter else overlay, self.slab)

    def set_presenter(self, on: bool) -> None:
        """Presenter mode: no patient identity, larger text, thicker boxes."""
        self.presenter = bool(on)
        base = 12 if self._compact else 14
        self._font.setPixelSize(round(base * (1.6 if on else 1.0)))
        if self._layer is not None:
            self._layer.presenter = self.presenter
        self.viewport().update()

    def image_to_viewport(self, x: float, y: float) -> QPointF:
        """Viewport position of image pixel-edge coordinates (x, y) of the shown slice."""
        return self.viewportTransform().map(QPointF(x * self._pixel_mm[0], y * self._pixel_mm[1]))

    def viewport_to_image(self, pos: QPointF) -> tuple[float, float]:
        """Image pixel-edge coordinates under a viewport position."""
        inverse, _ = self.viewportTransform().inverted()
        scene = inverse.map(QPointF(pos))
        return (scene.x() / self._pixel_mm[0], scene.y() / self._pixel_mm[1])

    def show_preview(self, image: np.ndarray | None) -> None:
        """Show a slice that is not (yet) the session's, e.g. while its volume loads."""
        self._preview = True
        self._rendered_key = None
        for layer in self.layers:  # what they show belongs to the volume, not the preview
            layer.clear()
        if image is None:
            self._item.setPixmap(QPixmap())
        else:
            self._set_image(apply_window(image, auto_window(image)), (1.0, 1.0))
            self.fit()
        self.viewport().update()

    def clear_preview(self) -> None:
        if self._preview:
            self._preview = False
            self.refresh(fit=True)

    def refresh(self, *, fit: bool = False) -> None:
        """Redraw from the session (only what changed, unless the view is hidden)."""
        if self._preview:
            return
        if fit:
            self._rendered_key = None
            self._fitted = True
        self._render()
        for layer in self.layers:
            layer.refresh()
        if fit:
            self.fit()
        self.viewport().update()

    def fit(self) -> None:
        """Fit the image to the view, keeping its aspect."""
        rect = self._item.sceneBoundingRect()
        if rect.isEmpty():
            return
        self.setSceneRect(
            rect.adjusted(
                -20 * rect.width(), -20 * rect.height(), 20 * rect.width(), 20 * rect.height()
            )
        )
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        self._fitted = True
        self.viewport().update()

    def reset(self) -> None:
        """Fit, and back to the volume's initial window."""
        self.fit()
        self._session.reset_window()

    # -- session -> view ---------------------------------------------------------------------

    def _on_volume_changed(self, *_: object) -> None:
        self._preview = False
        self.refresh(fit=True)

    def _on_window_changed(self, *_: object) -> None:
        self.refresh()

    def _on_cursor_changed(self, *_: object) -> None:
        self.refresh()
        if self._hover_pos is not None:  # a new slice under a resting mouse: a new value
            self._report_hover(self._hover_pos)

    def _on_boxes_changed(self, *_: object) -> None:
        self.viewport().update()

    def _render(self) -> None:
        volume = self._session.volume
        if volume is None or self._session.window is None:
            self._rendered_key = None
            self._buffer = None
            self._item.setPixmap(QPixmap())
            return
        if not self.isVisible():
            self._rendered_key = None  # render when shown
            return
        index = self._session.slice_index(self._plane)
        key = (volume.token, self._plane, index, self._session.window, self.slab)
        if key == self._rendered_key:
            return
        image = slab_image(volume, self._plane, index, self.slab)
        self._set_image(
            apply_window(image, self._session.window), geometry.pixel_size_mm(volume, self._plane)
        )
        self._rendered_key = key

    def _set_image(self, grey: np.ndarray, pixel_mm: tuple[float, float]) -> None:
        qimage, self._buffer = to_qimage(grey)
        self._item.setPixmap(QPixmap.fromImage(qimage))
        if pixel_mm != self._pixel_mm or self._item.transform().isIdentity():
            self._pixel_mm = (float(pixel_mm[0]), float(pixel_mm[1]))
            self._item.setTransform(QTransform.fromScale(*self._pixel_mm))

    # -- geometry helpers --------------------------------------------------------------------

    def _view_to_index(self, pos: QPoint) -> tuple[float, float, float] | None:
        volume = self._session.volume
        if volume is None or self._preview:
            return None
        scene = self.mapToScene(pos)
        col = scene.x() / self._pixel_mm[0] - 0.5
        row = scene.y() / self._pixel_mm[1] - 0.5
        index = self._session.slice_index(self._plane)
        return geometry.view_to_index(volume, self._plane, index, col, row)

    def _cursor_in_viewport(self) -> QPointF | None:
        volume = self._session.volume
        if volume is None:
            return None
        _, col, row = geometry.index_to_view(volume, self._plane, self._session.cursor_ijk)
        scene = QPointF((col + 0.5) * self._pixel_mm[0], (row + 0.5) * self._pixel_mm[1])
        return QPointF(self.mapFromScene(scene))

    def zoom_by(self, factor: float, anchor: QPoint) -> None:
        low, high = _ZOOM_LIMITS
        factor = min(max(self.zoom() * factor, low), high) / max(self.zoom(), 1e-9)
        before = self.mapToScene(anchor)
        self.scale(factor, factor)
        after = self.mapToScene(anchor)
        self.translate(after.x() - before.x(), after.y() - before.y())
        self._fitted = False
        self.viewport().update()

    def pan_by(self, delta: QPoint) -> None:
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - delta.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() - delta.y())
        self._fitted = False
        self.viewport().update()

    # -- Qt events ---------------------------------------------------------------------------

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        area = QRectF(self.viewport().rect())
        at = self._cursor_in_viewport()
        if self.show_crosshair and not self.presenter and at is not None and not self._preview:
            paint_crosshair(painter, area, self._plane, at, gap=6 if self._compact else 10)
        volume = self._session.volume
        if self._layer is not None and volume is not None and not self._preview:
            index = self._session.slice_index(self._plane)
            self._layer.paint(
                painter, volume, self._plane, index, self.image_to_viewport, self._font
            )
        paint_overlay(painter, area, self.overlay(), self._font)
        if self._session.volume is None and not self._preview and not self._compact:
            paint_hint(painter, area, EMPTY_HINT, self._font)
        if self.show_crosshair:
            paint_frame(painter, area, self._plane, self.hasFocus())
        painter.restore()

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self.refresh(fit=self._fitted)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self._fitted:
            self.fit()

    def focusInEvent(self, event) -> None:  # noqa: N802
        super().focusInEvent(event)
        self.viewport().update()

    def focusOutEvent(self, event) -> None:  # noqa: N802
        super().focusOutEvent(event)
        self.viewport().update()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        self.gestures.wheel(event)
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        key = event.key()
        if key in _KEY_STEPS and not event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.page(_KEY_STEPS[key])
        elif key == Qt.Key.Key_Home:
            self._page_to(0)
        elif key == Qt.Key.Key_End:
            self._page_to(self._session.slice_count(self._plane) - 1)
        elif key == Qt.Key.Key_F:
            self.fit()
        elif key == Qt.Key.Key_R:
            self.reset()
        elif key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self._layer is not None:
            self._layer.assistant.set_user_box(None)
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        self.gestures.press(event)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._hover_pos = event.position().toPoint()
        self._report_hover(self._hover_pos)
        self.gestures.move(event)
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self.gestures.release(event)
        event.accept()

    def leaveEvent(self, event) -> None:  # noqa: N802
        super().leaveEvent(event)
        self._hover_pos = None
        self.hovered.emit(None)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self.main_requested.emit(self._plane)
        event.accept()

    def page(self, steps: int) -> None:
        """Go ``steps`` slices on in reading order (negative: back), clamped at the ends."""
        volume = self._session.volume
        if volume is None:
            return
        backwards = geometry.reads_backwards(volume, self._plane)
        self._session.scroll(self._plane, -steps if backwards else steps)

    def _page_to(self, position: int) -> None:
        """Show the slice at 0-based ``position`` of the reading order."""
        volume = self._session.volume
        if volume is None:
            return
        index = geometry.reading_position(volume, self._plane, position)
        self._session.set_slice(self._plane, index)

    def _report_hover(self, pos: QPoint) -> None:
        """Emit the voxel shown at viewport ``pos``, or None when no image pixel is there."""
        ijk = self._view_to_index(pos)
        volume = self._session.volume
        if ijk is None or volume is None:
            self.hovered.emit(None)
            return
        voxel = tuple(int(np.floor(v + 0.5)) for v in ijk)
        n_k, n_j, n_i = volume.shape
        inside = all(0 <= v < n for v, n in zip(voxel, (n_i, n_j, n_k), strict=True))
        self.hovered.emit(voxel if inside else None)

    # -- what `MouseGestures` drives -----------------------------------------------------------

    def session_window(self) -> Window | None:
        return self._session.window

    def set_window_soon(self, window: Window) -> None:
        self._set_window_throttled(window)

    def flush_window(self) -> None:
        self._set_window_throttled.flush()

    def box_tool_on(self) -> bool:
        return (
            self.tool == "box"
            and self._layer is not None
            and self._session.volume is not None
            and not self._preview
        )

    def box_press(self, event: QMouseEvent) -> None:
        reach = 7 / max(self.zoom(), 1e-6)
        self._layer.press(self._image_point(event), self._plane, self._slice(), reach)

    def box_move(self, event: QMouseEvent) -> None:
        self._layer.move(self._image_point(event), self._image_size())
        self.viewport().update()

    def box_release(self, event: QMouseEvent, moved: bool) -> None:
        if moved:
            self._layer.release(
                self._image_point(event), self._image_size(), self._plane, self._slice()
            )
            self.viewport().update()
        else:
            self._layer.drag = None

    def click_at(self, event: QMouseEvent) -> None:
        """A click without a drag: pick the answer box there and move the cursor there."""
        self._pick_box(event)
        ijk = self._view_to_index(event.position().toPoint())
        if ijk is not None:
            self._session.move_cursor(ijk)

    def _image_point(self, event: QMouseEvent) -> tuple[float, float]:
        return self.viewport_to_image(event.position())

    def _image_size(self) -> tuple[int, int]:
        if self._buffer is None:
            return (0, 0)
        rows, cols = self._buffer.shape[:2]
        return (cols, rows)

    def _slice(self) -> int:
        return self._session.slice_index(self._plane)

    def _pick_box(self, event: QMouseEvent) -> None:
        if self._layer is None or self._session.volume is None:
            return
        hit = self._layer.hit(self._image_point(event), self._plane, self._slice())
        if hit is not None:
            self._layer.assistant.select(*hit)
