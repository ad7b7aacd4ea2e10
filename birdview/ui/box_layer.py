"""What a slice view draws from the `Assistant`, and the box tool's mouse handling.

Answer boxes are drawn on the slice they belong to in their colour (`exports.box_colour`, the
same as in exported PNGs) with their label; the selected one is thicker with a white halo. A
volume sweep's extent shows as a dashed outline on the other planes' slices that cut it. The
user's box has corner handles: drag inside to move it, a handle to resize it, elsewhere to
draw a new one. Coordinates are image pixel edges (see `birdview.core.box`); the view converts
between them and the viewport.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSizeF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen

from birdview.core.assistant import Assistant
from birdview.core.box import Box
from birdview.core.exports import box_colour
from birdview.core.extent import projection_on
from birdview.core.geometry import Plane
from birdview.core.volume import Volume
from birdview.ui.label_placement import place_label

__all__ = ["BoxDrag", "BoxLayer"]

_HANDLE_PX = 7  # handle half-size on screen; also the grab distance
_MIN_BOX_PX = 2.0  # image pixels: smaller drags are clicks
_USER_COLOUR = QColor(255, 255, 255)

ToScreen = Callable[[float, float], QPointF]  # image edge coords → viewport


@dataclass
class BoxDrag:
    """A drag in progress: "new", "move" or a corner ("tl", "tr", "br", "bl")."""

    mode: str
    start: tuple[float, float]
    box: tuple[float, float, float, float]


class BoxLayer:
    """Paints one view's boxes and edits the user's box on it."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.drag: BoxDrag | None = None
        self.drag_edges: tuple[float, float, float, float] | None = None  # drawn while dragging
        self.presenter = False
        self.label_rects: list[QRectF] = []  # where the last paint put the boxes' names

    # -- painting ------------------------------------------------------------------------------

    def paint(
        self,
        painter: QPainter,
        volume: Volume,
        plane: Plane,
        slice_index: int,
        to_screen: ToScreen,
        font: QFont,
    ) -> None:
        self._paint_extents(painter, volume, plane, slice_index, to_screen)
        selected = self.assistant.selected
        shown = self.assistant.boxes_on(plane, slice_index)
        rects = [_screen_rect(p.box.edges_px, to_screen) for p in shown]
        self.label_rects = []
        area = QRectF(painter.viewport())
        for placed in shown:
            colour = QColor(*box_colour(placed.colour))
            chosen = selected == (placed.turn_id, placed.index)
            self._paint_box(painter, placed.box.edges_px, colour, to_screen, chosen)
        for n, placed in enumerate(shown):
            if placed.box.label:
                others = rects[:n] + rects[n + 1 :]
                colour = QColor(*box_colour(placed.colour))
                self._paint_label(painter, rects[n], placed.box.label, colour, font, others, area)
        edges = self.drag_edges if self.drag is not None else None
        edges = edges or self._user_edges(plane, slice_index)
        if edges is not None:
            self._paint_user_box(painter, edges, to_screen)

    def _paint_box(self, painter, edges, colour: QColor, to_screen: ToScreen, chosen: bool) -> None:
        rect = _screen_rect(edges, to_screen)
        width = (4 if self.presenter else 2) + (2 if chosen else 0)
        if chosen or self.presenter:  # a dark halo keeps the colour legible on bright tissue
            halo = QPen(QColor(255, 255, 255) if chosen else QColor(0, 0, 0, 180), width + 3)
            halo.setCosmetic(True)
            painter.setPen(halo)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(rect)
        pen = QPen(colour, width)
        pen.setCosmetic(True)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(rect)

    def _paint_label(self, painter, rect, label: str, colour: QColor, font, others, area) -> None:
        bold = QFont(font)
        bold.setBold(True)
        metrics = QFontMetricsF(bold)
        size = QSizeF(metrics.horizontalAdvance(label) + 2, metrics.height())
        spot = place_label(rect, size, others, self.label_rects, area)
        self.label_rects.append(spot)
        x, y = spot.left() + 1, spot.top() + metrics.ascent()
        painter.setFont(bold)
        painter.setPen(QColor(0, 0, 0, 220))  # a dark outline: legible on bright tissue
        for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            painter.drawText(QPointF(x + dx, y + dy), label)
        painter.setPen(colour)
        painter.drawText(QPointF(x, y), label)

    def _paint_user_box(self, painter, edges, to_screen: ToScreen) -> None:
        rect = _screen_rect(edges, to_screen)
        pen = QPen(_USER_COLOUR, 3 if self.presenter else 1.5, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(rect)
        painter.setPen(QPen(QColor(0, 0, 0), 1))
        painter.setBrush(_USER_COLOUR)
        for corner in (rect.topLeft(), rect.topRight(), rect.bottomRight(), rect.bottomLeft()):
            painter.drawRect(QRectF(corner.x() - 3.5, corner.y() - 3.5, 7, 7))

    def _paint_extents(self, painter, volume, plane, slice_index, to_screen) -> None:
        slots = {p.turn_id: p.colour for p in self.assistant.placed_boxes()}
        for turn in self.assistant.turns:
            if turn.extent is None or turn.plane is plane:
                continue
            if not self.assistant.visibility.shows_turn(turn.turn_id):
                continue
            box = projection_on(volume, turn.extent, plane, slice_index)
            if box is None:
                continue
            pen = QPen(QColor(*box_colour(slots.get(turn.turn_id, 0))), 2, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(_screen_rect(box.edges_px, to_screen))

    # -- editing -------------------------------------------------------------------------------

    def press(
        self, point: tuple[float, float], plane: Plane, slice_index: int, grab_px: float
    ) -> None:
        """Start a drag at image point ``point``; ``grab_px`` is the handle reach in image px."""
        edges = self._user_edges(plane, slice_index)
        x, y = point
        if edges is not None:
            corner = _corner_at(edges, x, y, grab_px)
            if corner is not None:
                self.drag = BoxDrag(corner, point, edges)
                return
            x1, y1, x2, y2 = edges
            if x1 <= x <= x2 and y1 <= y <= y2:
                self.drag = BoxDrag("move", point, edges)
                return
        self.drag = BoxDrag("new", point, (x, y, x, y))

    def move(self, point: tuple[float, float], size: tuple[int, int]) -> tuple[float, ...] | None:
        """The box the drag describes now (not yet committed), clamped to the image."""
        drag = self.drag
        if drag is None:
            return None
        x, y = point
        x1, y1, x2, y2 = drag.box
        if drag.mode == "new":
            x1, y1, x2, y2 = drag.start[0], drag.start[1], x, y
        elif drag.mode == "move":
            dx = min(max(x - drag.start[0], -x1), size[0] - x2)
            dy = min(max(y - drag.start[1], -y1), size[1] - y2)
            x1, y1, x2, y2 = x1 + dx, y1 + dy, x2 + dx, y2 + dy
        else:
            if "l" in drag.mode:
                x1 = x
            if "r" in drag.mode:
                x2 = x
            if "t" in drag.mode:
                y1 = y
            if "b" in drag.mode:
                y2 = y
        self.drag_edges = _normalised((x1, y1, x2, y2), size)
        return self.drag_edges

    def release(
        self, point: tuple[float, float], size: tuple[int, int], plane: Plane, slice_index: int
    ) -> bool:
        """End the drag; a large enough box becomes the user's box. Returns True if it did."""
        edges = self.move(point, size)
        self.drag, self.drag_edges = None, None
        if edges is None:
            return False
        x1, y1, x2, y2 = edges
        if x2 - x1 < _MIN_BOX_PX or y2 - y1 < _MIN_BOX_PX:
            return False
        self.assistant.set_user_box(Box(plane, slice_index, x1, y1, x2, y2, label="drawn"))
        return True

    def _user_edges(
        self, plane: Plane, slice_index: int
    ) -> tuple[float, float, float, float] | None:
        box = self.assistant.user_box
        if box is None or box.plane is not plane or box.slice_index != slice_index:
            return None
        return box.edges_px

    def hit(
        self, point: tuple[float, float], plane: Plane, slice_index: int
    ) -> tuple[int, int] | None:
        """The answer box under ``point`` (the smallest, when several overlap)."""
        x, y = point
        inside = [
            p
            for p in self.assistant.boxes_on(plane, slice_index)
            if p.box.x1_px <= x <= p.box.x2_px and p.box.y1_px <= y <= p.box.y2_px
        ]
        if not inside:
            return None
        best = min(inside, key=lambda p: p.box.area_px)
        return (best.turn_id, best.index)


def _screen_rect(edges, to_screen: ToScreen) -> QRectF:
    x1, y1, x2, y2 = edges
    return QRectF(to_screen(x1, y1), to_screen(x2, y2)).normalized()


def _corner_at(edges, x: float, y: float, reach: float) -> str | None:
    x1, y1, x2, y2 = edges
    for name, cx, cy in (("tl", x1, y1), ("tr", x2, y1), ("br", x2, y2), ("bl", x1, y2)):
        if abs(x - cx) <= reach and abs(y - cy) <= reach:
            return name
    return None


def _normalised(edges, size: tuple[int, int]) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = edges
    x1, x2 = sorted((x1, x2))
    y1, y2 = sorted((y1, y2))
    width, height = size
    return (
        min(max(x1, 0.0), width),
        min(max(y1, 0.0), height),
        min(max(x2, 0.0), width),
        min(max(y2, 0.0), height),
    )
