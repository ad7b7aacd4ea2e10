"""Drawing and hit-testing of measurements in viewport pixels, for `measure_layer`."""

from __future__ import annotations

import itertools

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPen

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
    if kind == "rectangle":
        painter.drawRect(bounding_rect(points))
    elif kind == "ellipse":
        painter.drawEllipse(bounding_rect(points))
    else:
        painter.drawPolyline(points)
        for p in (points[0], points[-1]):
            painter.drawEllipse(p, 2.5, 2.5)


def handles(kind: str, points) -> list[QPointF]:
    """Ruler and angle: their points; ROIs: the four corners (tl, tr, br, bl)."""
    if kind in ("ruler", "angle"):
        return list(points)
    rect = bounding_rect(points)
    return [rect.topLeft(), rect.topRight(), rect.bottomRight(), rect.bottomLeft()]


def on_shape(kind: str, points, pos: QPointF) -> bool:
    if kind in ("ruler", "angle"):
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
    """Where the label starts: right of the shape, level with its top."""
    if kind == "angle":
        return points[1] + QPointF(10, 4)
    right = max(p.x() for p in points)
    top = min(p.y() for p in points)
    return QPointF(right + 8, top + 12)


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
