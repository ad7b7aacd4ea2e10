"""`MouseGestures`: a slice view's mouse drags and wheel, routed through its `MouseMap`.

The view keeps what it draws; this keeps what a gesture does: which action a press starts
(from the button and the modifier held, looked up in the map), and what each move of that
drag changes — window/level, zoom, pan, slice scrolling, or the active tool (the box tool is
drawn here; the measurement tools by their layer, which asks `is_tool_press`).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent

from birdview.core.display import Window
from birdview.core.mouse_map import MouseMap

__all__ = ["MouseGestures", "button_name", "modifier_name"]

_DRAG_THRESHOLD_PX = 4
_WHEEL_STEP = 120
_SCROLL_PX_PER_SLICE = 6

_BUTTONS = {
    Qt.MouseButton.LeftButton: "left",
    Qt.MouseButton.MiddleButton: "middle",
    Qt.MouseButton.RightButton: "right",
}


def button_name(button: Qt.MouseButton) -> str:
    return _BUTTONS.get(button, "")


def modifier_name(modifiers: Qt.KeyboardModifier) -> str:
    """The one modifier a gesture is mapped with; Ctrl wins over Shift over Alt."""
    for flag, name in (
        (Qt.KeyboardModifier.ControlModifier, "ctrl"),
        (Qt.KeyboardModifier.ShiftModifier, "shift"),
        (Qt.KeyboardModifier.AltModifier, "alt"),
    ):
        if modifiers & flag:
            return name
    return ""


@dataclass
class _Drag:
    action: str
    button: Qt.MouseButton
    start: QPoint  # where the drag's last step was applied from
    window: Window | None  # the window when the press happened (W/L drags are relative to it)
    moved: bool = False
    scroll_rest: int = 0


class MouseGestures:
    """Mouse handling for one `SliceView` (``view``)."""

    def __init__(self, view, mouse_map: MouseMap | None = None) -> None:
        self.view = view
        self.mouse_map = mouse_map or MouseMap.default()
        self.drag: _Drag | None = None
        self._wheel_rest = 0

    def action_of(self, event: QMouseEvent) -> str:
        name = button_name(event.button())
        return self.mouse_map.action(name, modifier_name(event.modifiers())) if name else "none"

    def is_tool_press(self, event: QMouseEvent) -> bool:
        """Whether ``event`` (a press or release) belongs to the active tool."""
        return self.action_of(event) == "tool"

    def press(self, event: QMouseEvent) -> None:
        view = self.view
        action = self.action_of(event)
        self.drag = _Drag(action, event.button(), event.position().toPoint(), view.session_window())
        if action == "tool" and view.box_tool_on():
            view.box_press(event)

    def move(self, event: QMouseEvent) -> None:
        drag = self.drag
        if drag is None:
            return
        pos = event.position().toPoint()
        delta = pos - drag.start
        if not drag.moved and delta.manhattanLength() < _DRAG_THRESHOLD_PX:
            return
        drag.moved = True
        action = drag.action
        if action == "tool" and self.view.box_tool_on():
            self.view.box_move(event)
        elif action == "window" or (action == "tool" and self.view.tool == "window"):
            if drag.window is not None:
                self.view.set_window_soon(dragged_window(drag.window, delta))
        elif action == "zoom":
            self.view.zoom_by(1.01 ** (drag.start.y() - pos.y()), drag.start)
            drag.start = QPoint(drag.start.x(), pos.y())
        elif action == "pan":
            self.view.pan_by(delta)
            drag.start = pos
        elif action == "scroll":
            drag.scroll_rest += pos.y() - drag.start.y()
            drag.start = pos
            steps = int(drag.scroll_rest / _SCROLL_PX_PER_SLICE)
            drag.scroll_rest -= steps * _SCROLL_PX_PER_SLICE
            if steps:
                self.view.page(steps)  # dragging down goes on, like the wheel towards the user

    def release(self, event: QMouseEvent) -> None:
        drag, self.drag = self.drag, None
        if drag is None:
            return
        view = self.view
        if drag.action == "tool" and view.box_tool_on():
            view.box_release(event, drag.moved)
        if drag.action == "tool" and not drag.moved:  # a click: move the cursor, pick a box
            view.click_at(event)
        view.flush_window()

    def wheel(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y()
        action = self.mouse_map.action("wheel", modifier_name(event.modifiers()))
        if action == "zoom":
            self.view.zoom_by(1.0015**delta, event.position().toPoint())
        elif action == "scroll":
            self._wheel_rest += delta
            steps = int(self._wheel_rest / _WHEEL_STEP)
            self._wheel_rest -= steps * _WHEEL_STEP
            if steps:
                self.view.page(-steps)  # wheel towards the user (negative delta): next slice


def dragged_window(start: Window, delta: QPoint) -> Window:
    """Right widens, left narrows; down raises the level, up lowers it."""
    step = max(start.width, 1.0) / 256.0
    width = max(start.width + delta.x() * step, 1.0)
    return Window(start.center + delta.y() * step, width)
