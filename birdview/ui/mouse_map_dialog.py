"""`MouseMapDialog`: what each mouse button, with or without a modifier, does in the views.

A grid of choices, one per gesture (left, middle and right drag and the wheel, plain or with
Shift, Ctrl or Alt), so a gesture can never be bound twice. The map is checked as it is edited
(`birdview.core.mouse_map.MouseMap`: the active tool on exactly one gesture, the wheel only
scrolling or zooming); a map that cannot work shows why and cannot be accepted. *Restore
defaults* goes back to the PACS habit. The caller saves and applies the accepted map.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from birdview.core.mouse_map import (
    BUTTONS,
    GESTURES,
    MODIFIERS,
    MouseMap,
    MouseMapError,
    actions_for,
    describe_action,
)

__all__ = ["MouseMapDialog"]

# Short words for the grid; the tool tips give `describe_action`'s longer ones.
_SHORT = {
    "tool": "Active tool",
    "window": "Window/level",
    "zoom": "Zoom",
    "pan": "Pan",
    "scroll": "Scroll slices",
    "none": "—",
}
_ROW_NAMES = {"left": "Left drag", "middle": "Middle drag", "right": "Right drag", "wheel": "Wheel"}
_COLUMN_NAMES = {"": "Alone", "shift": "Shift+", "ctrl": "Ctrl+", "alt": "Alt+"}


class MouseMapDialog(QDialog):
    """Edits a copy of ``mouse_map``; `mouse_map()` is the accepted result."""

    def __init__(self, mouse_map: MouseMap, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Mouse buttons")
        self.combos: dict[tuple[str, str], QComboBox] = {}
        grid = QGridLayout()
        for column, modifier in enumerate(MODIFIERS, start=1):
            grid.addWidget(_bold(_COLUMN_NAMES[modifier]), 0, column)
        for row, button in enumerate(BUTTONS, start=1):
            grid.addWidget(_bold(_ROW_NAMES[button]), row, 0)
            for column, modifier in enumerate(MODIFIERS, start=1):
                combo = _action_box(button)
                combo.currentIndexChanged.connect(self._check)
                self.combos[(button, modifier)] = combo
                grid.addWidget(combo, row, column)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #d33;")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        restore = self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
        restore.clicked.connect(lambda *_: self.show_map(MouseMap.default()))
        note = QLabel(
            "The active tool is the one chosen in the tool bar (window/level when none is). "
            "A click with its button moves the cursor."
        )
        note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(note)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self.show_map(mouse_map)

    def show_map(self, mouse_map: MouseMap) -> None:
        """Set every choice from ``mouse_map`` (gestures it leaves out do nothing)."""
        for (button, modifier), combo in self.combos.items():
            combo.blockSignals(True)  # one check at the end, not one per box
            combo.setCurrentIndex(combo.findData(mouse_map.action(button, modifier)))
            combo.blockSignals(False)
        self._check()

    def chosen(self) -> dict[tuple[str, str], str]:
        """The gestures that do something, as chosen now."""
        bindings = {gesture: self.combos[gesture].currentData() for gesture in GESTURES}
        return {gesture: action for gesture, action in bindings.items() if action != "none"}

    def mouse_map(self) -> MouseMap | None:
        """The map chosen, or None while it cannot work."""
        try:
            return MouseMap(self.chosen())
        except MouseMapError:
            return None

    def _check(self, *_: object) -> None:
        try:
            MouseMap(self.chosen())
        except MouseMapError as exc:
            self.problem.setText(f"Unable to use this mapping: {exc}.")
            ok = False
        else:
            self.problem.clear()
            ok = True
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)


def _action_box(button: str) -> QComboBox:
    combo = QComboBox()
    for action in actions_for(button):
        combo.addItem(_SHORT[action], action)
        combo.setItemData(combo.count() - 1, describe_action(action), Qt.ItemDataRole.ToolTipRole)
    return combo


def _bold(text: str) -> QLabel:
    label = QLabel(f"<b>{text}</b>")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    return label
