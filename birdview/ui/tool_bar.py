"""`ToolBar`: what the left mouse button does (window/level or box), presenter mode, exports.

It only places the registry's actions (`birdview.ui.actions`), which also carry the shortcuts.
"""

from __future__ import annotations

from PySide6.QtWidgets import QToolBar, QWidget

from birdview.ui.actions import ActionRegistry
from birdview.ui.measure_layer import MEASURE_TOOLS

__all__ = ["ToolBar"]


class ToolBar(QToolBar):
    """The main window's tool bar."""

    def __init__(self, actions: ActionRegistry, parent: QWidget | None = None) -> None:
        super().__init__("Tools", parent)
        self.setObjectName("tool_bar")  # saveState needs names
        self.addActions(
            [actions.window_tool_action, actions.box_tool_action, actions.delete_box_action]
        )
        self.addSeparator()
        self.addActions([actions.tool_actions[t] for t in MEASURE_TOOLS])
        self.addActions([actions.tool_actions[t] for t in ("brush", "eraser")])  # masks
        self.addSeparator()
        self.addAction(actions.presenter_action)
        self.addSeparator()
        self.addAction(actions.export_png_action)
