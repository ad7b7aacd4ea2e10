"""`MeasureLayer`: draws the measurements of one `SliceView` and edits them with the mouse.

It sits beside the view rather than in it: a scene item paints the measurements of the view's
slice (in viewport pixels, so lines and labels keep their size at any zoom), and event
filters on the view take the left button when it is meant for a measurement:

- with a measurement tool ("ruler", "angle", "ellipse", "rectangle"), a drag draws one; an
  angle is drawn arm by arm (drag or click the first arm, then click the other arm's end);
- with the measurement tools and the window tool, pressing a handle of a measurement resizes
  it, pressing on it moves it, and a click selects it; Delete removes the selected one.

Edits go to the `MeasurementSet` only on release, so undo takes back a whole drag. The values
come from `birdview.core.measure`, over the image the view shows (a thick slab's projection
too); labels have a dark outline to stay legible on bone.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem

from birdview.core import geometry
from birdview.core.measure import ANNOTATION_KINDS, KINDS, Measurement, measure
from birdview.core.measure_set import MeasurementSet
from birdview.core.session import Session
from birdview.ui._measure_drawing import (
    REACH_PX,
    SHADOW,
    distance,
    draw_shape,
    handles,
    label_anchor,
    make_pen,
    on_shape,
    paint_label,
    paint_leader,
    place_label,
)
from birdview.ui._observe import observe

__all__ = ["MEASURE_TOOLS", "MeasureLayer"]

MEASURE_TOOLS = KINDS
_EDIT_TOOLS = (*KINDS, "window")  # tools under which a press on a measurement edits it
_MIN_DRAG_PX = 3.0
_COLOUR = QColor(255, 215, 0)
_SELECTED = QColor(0, 230, 255)
_CACHE_SIZE = 256
_COMPACT_PX = 360  # views narrower than this label a measurement with its key value only
_HANDLED = frozenset(
    {
        QEvent.Type.KeyPress,
        QEvent.Type.MouseButtonPress,
        QEvent.Type.MouseMove,
        QEvent.Type.MouseButtonRelease,
        QEvent.Type.MouseButtonDblClick,
    }
)


@dataclass
class _Edit:
    """A drag in progress: ``index`` None for a new measurement; ``handle`` the point (or ROI
    corner) dragged, None to move the whole measurement."""

    index: int | None
    handle: int | None
    start: tuple[float, float]
    original: Measurement
    moved: bool = False


class _Painter(QGraphicsItem):
    """Paints the layer above the image, in viewport pixels."""

    def __init__(self, layer: MeasureLayer) -> None:
        super().__init__()
        self._layer = layer
        self.setZValue(10)

    def boundingRect(self) -> QRectF:  # noqa: N802 - always drawn: the view decides what shows
        return QRectF(-1e4, -1e4, 2e4, 2e4)  # scene units are mm: ±10 m

    def paint(self, painter: QPainter, *_: object) -> None:
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        self._layer.paint(painter)
        painter.restore()


class MeasureLayer(QObject):
    """The measurements of one view.

    Signals:
        committed(index): a measurement was drawn or edited (its index in the set).
        text_requested(note): the text tool placed a note (a Measurement), or a note was
            double-clicked (its index): its text is to be asked.
    """

    committed = Signal(int)
    text_requested = Signal(object)

    def __init__(self, view, session: Session, measurements: MeasurementSet) -> None:
        super().__init__(view)
        self.view = view
        self._session = session
        self.measurements = measurements
        self.edit: _Edit | None = None
        self.preview: Measurement | None = None
        self._angle: list[tuple[float, float]] = []  # fixed points of an angle being drawn
        self._angle_started = False
        self._values: dict[tuple, list[str]] = {}
        self._item = _Painter(self)
        view.scene().addItem(self._item)
        view.viewport().installEventFilter(self)
        view.installEventFilter(self)
        observe(self, measurements.changed, self._on_changed)
        observe(self, measurements.selection_changed, self._on_changed)

    # -- state ---------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Drop a measurement being drawn or dragged."""
        self.edit, self.preview, self._angle = None, None, []
        self.view.viewport().update()

    def _slice(self) -> tuple[object, int] | None:
        volume = self._session.volume
        if volume is None:
            return None
        return volume, self._session.slice_index(self.view.plane)

    def _on_changed(self, *_: object) -> None:
        self.view.viewport().update()

    # -- painting ------------------------------------------------------------------------------

    def paint(self, painter: QPainter) -> None:
        placed = self._slice()
        if placed is None:
            return
        volume, index = placed
        font = QFont(self.view.font())
        font.setPixelSize(20 if getattr(self.view, "presenter", False) else 13)
        font.setBold(True)
        painter.setFont(font)
        editing = self.edit.index if self.edit is not None else None
        taken: list[QRectF] = []  # the labels placed so far
        for n, m in self.measurements.on(self.view.plane, index):
            if n != editing:
                self._paint_one(painter, volume, m, n == self.measurements.selected, taken)
        if self.preview is not None and self.preview.slice_index == index:
            self._paint_one(painter, volume, self.preview, True, taken)

    def _paint_one(self, painter, volume, m: Measurement, selected: bool, taken: list) -> None:
        points = [self.view.image_to_viewport(x, y) for x, y in m.points_px]
        colour = _SELECTED if selected else _COLOUR
        for line_pen in (make_pen(SHADOW, 4), make_pen(colour, 2)):  # a dark halo under the colour
            painter.setPen(line_pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            draw_shape(painter, m.kind, points)
        if selected:
            painter.setPen(QPen(QColor(0, 0, 0), 1))
            painter.setBrush(colour)
            for p in handles(m.kind, points):
                painter.drawRect(QRectF(p.x() - 3.5, p.y() - 3.5, 7, 7))
        lines = self._lines(m, volume)
        if not lines:  # an arrow without a note
            return
        area = QRectF(self.view.viewport().rect())
        compact = area.width() < _COMPACT_PX and not selected
        if compact and m.kind not in ANNOTATION_KINDS:  # a small view: the key value only
            key = next((t for t in lines if t.startswith("Mean")), lines[1 if m.label else 0])
            lines = [key.split("  SD")[0]]
        metrics = QFontMetricsF(painter.font())
        rect = place_label(label_anchor(m.kind, points), lines, metrics, points, area, taken)
        paint_leader(painter, rect, points, colour)
        paint_label(painter, QPointF(rect.left(), rect.top() + metrics.ascent()), lines, colour)

    def _lines(self, m: Measurement, volume) -> list[str]:
        slab = self.view.slab  # ROI statistics of the image shown: a slab's projection too
        key = (m, volume.token, slab)
        lines = self._values.get(key)
        if lines is None:
            if len(self._values) > _CACHE_SIZE:
                self._values.clear()
            lines = measure(m, volume, slab).lines()
            self._values[key] = lines = [m.label, *lines] if m.label else lines
        return lines

    # -- events --------------------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        kind = event.type()
        if kind not in _HANDLED:  # before touching the view, which may be being destroyed
            return False
        if kind == QEvent.Type.KeyPress:
            return watched is self.view and self._on_key(event)
        if watched is not self.view.viewport() or self._slice() is None:
            return False
        drawing = self._angle or (self.edit is not None and self.edit.index is None)
        if drawing and self.view.tool not in MEASURE_TOOLS:
            self.cancel()  # the tool changed while drawing
        if kind == QEvent.Type.MouseButtonPress:
            return self._on_press(event)
        if kind == QEvent.Type.MouseMove:
            return self._on_move(event)
        if kind == QEvent.Type.MouseButtonRelease:
            return self._on_release(event)
        if self._edit_text(event):
            return True
        return self.view.tool in MEASURE_TOOLS  # a double click draws, it does not promote

    def _edit_text(self, event: QMouseEvent) -> bool:
        """A double click on a text note asks for its new text."""
        if event.button() != Qt.MouseButton.LeftButton or self.view.tool not in _EDIT_TOOLS:
            return False
        hit = self._hit(event.position(), self._slice()[1])
        if hit is None or self.measurements.items[hit[0]].kind != "text":
            return False
        self.edit = None
        self.text_requested.emit(hit[0])
        return True

    def _on_key(self, event) -> bool:
        """Delete removes the selected measurement if this view shows it (not one selected
        on a slice out of sight)."""
        selected, placed = self.measurements.selected, self._slice()
        if event.key() not in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) or selected is None:
            return False
        m = self.measurements.items[selected]
        if placed is None or m.plane is not self.view.plane or m.slice_index != placed[1]:
            return False
        self.measurements.remove(selected)
        return True

    def _on_press(self, event: QMouseEvent) -> bool:
        if not self.view.gestures.is_tool_press(event) or self.view.tool not in _EDIT_TOOLS:
            return False
        _, index = self._slice()
        pos = event.position()
        point = self._clamped(self.view.viewport_to_image(pos))
        if self.view.tool == "angle" and self._angle:
            return True  # the angle's next point is placed on release
        hit = self._hit(pos, index)
        if hit is not None:
            n, handle = hit
            self.measurements.select(n)
            self.edit = _Edit(n, handle, point, self.measurements.items[n])
        elif self.view.tool == "text":
            self.measurements.select(None)
            self.text_requested.emit(Measurement("text", self.view.plane, index, (point,)))
        elif self.view.tool in MEASURE_TOOLS:
            self.measurements.select(None)
            self._start(point, index)
        else:
            self.measurements.select(None)
            return False  # the window tool: a window/level drag
        self.view.setFocus(Qt.FocusReason.MouseFocusReason)
        return True

    def _start(self, point, index: int) -> None:
        tool = self.view.tool
        if tool == "angle":
            self._angle, self._angle_started = [point], True
            self.preview = Measurement("angle", self.view.plane, index, (point, point, point))
            return
        self.edit = _Edit(None, 1, point, Measurement(tool, self.view.plane, index, (point,) * 2))
        self.preview = self.edit.original

    def _on_move(self, event: QMouseEvent) -> bool:
        point = self._clamped(self.view.viewport_to_image(event.position()))
        if self._angle:
            self._angle_preview(point)
            return False  # the view still reports the value under the mouse
        edit = self.edit
        if edit is None:
            return False
        start = self.view.image_to_viewport(*edit.start)
        if not edit.moved and distance(start, event.position()) < _MIN_DRAG_PX:
            return True
        edit.moved = True
        self.preview = _dragged(edit, point)
        self.view.viewport().update()
        return True

    def _on_release(self, event: QMouseEvent) -> bool:
        if not self.view.gestures.is_tool_press(event):  # the mouse map's tool gesture
            return False
        point = self._clamped(self.view.viewport_to_image(event.position()))
        if self._angle:
            self._angle_release(point, event)
            return True
        edit, self.edit = self.edit, None
        if edit is None:
            return False
        preview, self.preview = self.preview, None
        if edit.moved and preview is not None and _big_enough(preview, self.view):
            if edit.index is None:
                self.committed.emit(self.measurements.add(preview))
            else:
                self.measurements.replace(edit.index, _tidied(preview))
                self.committed.emit(edit.index)
        self.view.viewport().update()
        return True

    def _angle_preview(self, point) -> None:
        fixed = self._angle
        points = (*fixed, *([point] * (3 - len(fixed))))
        self.preview = Measurement("angle", self.view.plane, self.preview.slice_index, points)
        self.view.viewport().update()

    def _angle_release(self, point, event: QMouseEvent) -> None:
        first = self.view.image_to_viewport(*self._angle[0])
        dragged = distance(first, event.position()) >= _MIN_DRAG_PX
        if not self._angle_started or dragged:
            self._angle.append(point)
        self._angle_started = False
        if len(self._angle) == 3:
            done = Measurement("angle", self.view.plane, self.preview.slice_index, self._angle)
            self._angle, self.preview = [], None
            self.committed.emit(self.measurements.add(done))
        else:
            self._angle_preview(point)

    # -- geometry ------------------------------------------------------------------------------

    def _clamped(self, point) -> tuple[float, float]:
        volume, index = self._slice()
        rows, cols = geometry.extract_slice(volume, self.view.plane, index).shape[:2]
        return (min(max(point[0], 0.0), float(cols)), min(max(point[1], 0.0), float(rows)))

    def _hit(self, pos: QPointF, index: int) -> tuple[int, int | None] | None:
        """(measurement, handle or None for its body) under viewport ``pos``; handles of the
        selected measurement first, then the most recent measurement."""
        found = self.measurements.on(self.view.plane, index)
        found.sort(key=lambda item: (item[0] != self.measurements.selected, -item[0]))
        for n, m in found:
            points = [self.view.image_to_viewport(x, y) for x, y in m.points_px]
            for h, p in enumerate(handles(m.kind, points)):
                if distance(p, pos) <= REACH_PX:
                    return n, h
        for n, m in found:
            points = [self.view.image_to_viewport(x, y) for x, y in m.points_px]
            if on_shape(m.kind, points, pos):
                return n, None
        return None


# -- editing helpers ------------------------------------------------------------------------


def _dragged(edit: _Edit, point) -> Measurement:
    m = edit.original
    if edit.handle is None:
        return m.moved(point[0] - edit.start[0], point[1] - edit.start[1])
    if not m.is_roi or edit.index is None:  # a point, or a new ROI's far corner
        return m.with_point(edit.handle, point)
    x1, y1, x2, y2 = m.edges_px()
    corner = ("tl", "tr", "br", "bl")[edit.handle]
    x1, x2 = (point[0], x2) if "l" in corner else (x1, point[0])
    y1, y2 = (point[1], y2) if "t" in corner else (y1, point[1])
    return Measurement(m.kind, m.plane, m.slice_index, ((x1, y1), (x2, y2)), m.label)


def _tidied(m: Measurement) -> Measurement:
    """ROIs keep their corners as (top-left, bottom-right), so handles stay where drawn."""
    if not m.is_roi:
        return m
    x1, y1, x2, y2 = m.edges_px()
    return Measurement(m.kind, m.plane, m.slice_index, ((x1, y1), (x2, y2)), m.label)


def _big_enough(m: Measurement, view) -> bool:
    points = [view.image_to_viewport(x, y) for x, y in m.points_px]
    return max(distance(points[0], p) for p in points[1:]) >= _MIN_DRAG_PX
