"""`ToolBar`: what the left mouse button does (window/level or box), presenter mode, exports."""

from __future__ import annotations

from typing import TYPE_CHECKING

import qtawesome as qta
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QToolBar

if TYPE_CHECKING:
    from birdview.ui.main_window import MainWindow

__all__ = ["ToolBar"]


class ToolBar(QToolBar):
    """The main window's tool bar; its actions also carry the shortcuts."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__("Tools", window)
        self.setObjectName("tool_bar")  # saveState needs names
        self._window = window
        group = QActionGroup(self)
        self.window_tool_action = self._action(
            "Window/level", "mdi6.contrast-circle", "W", "Left drag sets window and level (W)"
        )
        self.box_tool_action = self._action(
            "Box", "mdi6.selection-drag", "B", "Left drag draws a box to ask about (B)"
        )
        for action, tool in ((self.window_tool_action, "window"), (self.box_tool_action, "box")):
            action.setCheckable(True)
            group.addAction(action)
            action.triggered.connect(lambda *_, t=tool: window.view_layout.set_tool(t))
        self.window_tool_action.setChecked(True)
        self.delete_box_action = self._action(
            "Remove box", "mdi6.selection-remove", None, "Remove the drawn box (Delete)"
        )
        self.delete_box_action.triggered.connect(lambda *_: window.assistant.set_user_box(None))
        self.addSeparator()
        self.presenter_action = self._action(
            "Presenter",
            "mdi6.projector-screen-outline",
            "F11",
            "Presenter mode: full screen, no patient identity, large text (F11, Esc leaves)",
        )
        self.presenter_action.setCheckable(True)
        self.presenter_action.triggered.connect(lambda on: window.set_presenter(on))
        self.addSeparator()
        self.export_png_action = self._action(
            "Export PNG", "mdi6.image-move", None, "Save this view with its boxes as a PNG"
        )
        self.export_png_action.triggered.connect(lambda *_: window.exporter.png())

    def _action(self, text: str, icon: str, shortcut: str | None, tip: str) -> QAction:
        action = QAction(qta.icon(icon), text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(tip)
        self.addAction(action)
        self._window.addAction(action)  # shortcuts work while the tool bar is hidden
        return action
