"""Drawing and hit-testing of measurements in viewport pixels, for `measure_layer`."""

from __future__ import annotations

import itertools

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPen

from birdview.core.measure import ANNOTATION_KINDS
from birdview.ui.annotation_drawing import TEXT_REACH, draw_annotation

REACH_PX = 7.0  # screen pixels: how near a handle or a line a press must be
SHADOW = QColor(0, 0, 0, 200)


def make_pen(colour: QColor, width: float) -> QPen:
    pen = QPen(colour, width)
    pen.setCosmetic(True)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    return pen


def bounding_rect(points) -> QRectF:
    return QRectF(points[0], points[1]).normalized()


def draw_shape(painter: QPainter, kind: str, points) -> None:
    if kind in ANNOTATION_KINDS:
        draw_annotation(painter, kind, points)
    elif kind == "rectangle":
        painter.drawRect(bounding_rect(points))
    elif kind == "ellipse":
        painter.drawEllipse(bounding_rect(points))
    else:
        painter.drawPolyline(points)
        for p in (points[0], points[-1]):
            painter.drawEllipse(p, 2.5, 2.5)


def handles(kind: str, points) -> list[QPointF]:
    """Ruler and angle: their points; ROIs: the four corners (tl, tr, br, bl)."""
    if kind in ("ruler", "angle", *ANNOTATION_KINDS):
        return list(points)
    rect = bounding_rect(points)
    return [rect.topLeft(), rect.topRight(), rect.bottomRight(), rect.bottomLeft()]


def on_shape(kind: str, points, pos: QPointF) -> bool:
    if kind == "text":
        return TEXT_REACH.translated(points[0]).contains(pos)
    if kind in ("ruler", "angle", "arrow"):
        return any(segment_distance(a, b, pos) <= REACH_PX for a, b in itertools.pairwise(points))
    rect = bounding_rect(points).adjusted(-REACH_PX, -REACH_PX, REACH_PX, REACH_PX)
    return rect.contains(pos)


def distance(a: QPointF, b: QPointF) -> float:
    d = a - b
    return (d.x() ** 2 + d.y() ** 2) ** 0.5


def segment_distance(a: QPointF, b: QPointF, p: QPointF) -> float:
    ab, ap = b - a, p - a
    length2 = ab.x() ** 2 + ab.y() ** 2
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, (ap.x() * ab.x() + ap.y() * ab.y()) / length2))
    return distance(a + ab * t, p)


def label_anchor(kind: str, points) -> QPointF:
    """Where the label starts: right of the shape, level with its top; a text note's text
    where it was placed."""
    if kind == "text":
        return points[0] + QPointF(6, 5)
    if kind == "angle":
        return points[1] + QPointF(10, 4)
    right = max(p.x() for p in points)
    top = min(p.y() for p in points)
    return QPointF(right + 8, top + 12)


def place_label(
    at: QPointF, lines: list[str], metrics: QFontMetricsF, points, area: QRectF, taken: list
) -> QRectF:
    """Where a label goes: right of its shape (``at``), else left of it, below it or above it
    — the first place inside the view that crosses no label already placed (``taken``, which
    gets this one's rectangle); failing all, right or left moved down past the others."""
    width = max(metrics.horizontalAdvance(line) for line in lines)
    height = metrics.height() * len(lines)
    shape = QRectF(min(p.x() for p in points), min(p.y() for p in points), 0, 0)
    shape.setRight(max(p.x() for p in points))
    shape.setBottom(max(p.y() for p in points))
    top = at.y() - metrics.ascent()
    candidates = [
        QRectF(at.x(), top, width, height),
        QRectF(shape.left() - 8 - width, top, width, height),
        QRectF(shape.left(), shape.bottom() + 6, width, height),
        QRectF(shape.left(), shape.top() - 6 - height, width, height),
    ]
    inside = [r for r in candidates if area.adjusted(4, 4, -4, -4).contains(r)] or candidates[:1]
    free = [r for r in inside if not any(other.intersects(r) for other in taken)]
    rect = free[0] if free else inside[0]
    rect.moveLeft(max(rect.left(), area.left() + 4))
    for _ in range(len(taken) + 1):
        hit = next((other for other in taken if other.intersects(rect)), None)
        if hit is None:
            break
        rect.moveTop(hit.bottom() + 2)
    taken.append(rect)
    return rect


def paint_leader(painter: QPainter, label: QRectF, points, colour: QColor) -> None:
    """A dotted line from a label pushed away from its shape back to the shape."""
    shape = QRectF(min(p.x() for p in points), min(p.y() for p in points), 0, 0)
    shape.setRight(max(p.x() for p in points))
    shape.setBottom(max(p.y() for p in points))
    start = QPointF(
        _clamp(shape.center().x(), label.left(), label.right()),
        _clamp(shape.center().y(), label.top(), label.bottom()),
    )
    end = QPointF(
        _clamp(start.x(), shape.left(), shape.right()),
        _clamp(start.y(), shape.top(), shape.bottom()),
    )
    if distance(start, end) < 14:
        return
    for pen in (make_pen(SHADOW, 3), make_pen(colour, 1)):
        pen.setStyle(Qt.PenStyle.DotLine)
        painter.setPen(pen)
        painter.drawLine(start, end)


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def paint_label(painter: QPainter, at: QPointF, lines: list[str], colour: QColor) -> None:
    metrics = QFontMetricsF(painter.font())
    height = metrics.height()
    for n, line in enumerate(lines):
        where = at + QPointF(0, n * height)
        painter.setPen(SHADOW)
        for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1), (1, 1)):
            painter.drawText(where + QPointF(dx, dy), line)
        painter.setPen(colour if n == 0 else QColor(255, 255, 255))
        painter.drawText(where, line)
