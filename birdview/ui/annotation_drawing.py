"""Drawing and hit-testing of the user's arrows and text notes in viewport pixels.

Arrows and text notes live in the measurement set (`birdview.core.measure.ANNOTATION_KINDS`);
`birdview.ui._measure_drawing` hands these two kinds to this module.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QPainter, QPolygonF

__all__ = ["TEXT_REACH", "arrow_head", "draw_annotation"]

_HEAD_PX = 14.0  # screen pixels: an arrow head keeps its size at any zoom
_HEAD_ANGLE = math.radians(25)
TEXT_REACH = QRectF(-6, -22, 220, 30)  # where a press grabs a text note, around its anchor


def arrow_head(tail: QPointF, tip: QPointF, size: float = _HEAD_PX) -> QPolygonF:
    """The filled triangle at ``tip`` of an arrow from ``tail``."""
    angle = math.atan2(tip.y() - tail.y(), tip.x() - tail.x())
    left = angle + math.pi - _HEAD_ANGLE
    right = angle + math.pi + _HEAD_ANGLE
    return QPolygonF(
        [
            tip,
            tip + QPointF(math.cos(left) * size, math.sin(left) * size),
            tip + QPointF(math.cos(right) * size, math.sin(right) * size),
        ]
    )


def draw_annotation(painter: QPainter, kind: str, points) -> None:
    """An arrow: its shaft and a head in the pen's colour; a text note: a small anchor dot
    (its text is drawn as the measurement label is)."""
    if kind == "arrow":
        painter.drawLine(points[0], points[1])
        brush = painter.brush()
        painter.setBrush(painter.pen().color())
        painter.drawPolygon(arrow_head(points[0], points[1]))
        painter.setBrush(brush)
    else:
        painter.drawEllipse(points[0], 2.5, 2.5)
