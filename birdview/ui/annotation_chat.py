"""`ConversationControls`: the chat's undoable edits — clear the conversation, hide the
model's boxes (one answer's or all), delete one box — as actions, transcript links and the
Delete key on a selected answer box. The edits themselves are `ConversationEdits` in the core.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

import qtawesome as qta
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QToolButton, QWidget

from birdview.core.assistant import Assistant, ChatTurn, PlacedBox
from birdview.core.conversation_edits import BoxVisibility, ConversationEdits
from birdview.ui._observe import observe

__all__ = ["ConversationControls", "turn_controls_html"]


def turn_controls_html(turn: ChatTurn, placed: list[PlacedBox], visibility: BoxVisibility) -> str:
    """Under an answer with boxes: a link hiding or showing them, and one deleting each box
    (a sweep's boxes are one finding: hidden together, not deleted one by one)."""
    if not placed or not turn.finished:
        return ""
    shown = visibility.shows_turn(turn.turn_id)
    toggle = "Hide boxes" if shown else "Show boxes (hidden)"
    links = [f"<a href='hide:{turn.turn_id}'>{toggle}</a>"]
    if not turn.is_sweep:
        for p in placed:
            label = html.escape(p.box.label or f"box {p.index + 1}")
            links.append(f"<a href='delete:{p.turn_id}:{p.index}'>✕ {label}</a>")
    return (
        "<p style='margin-left:20px; margin-top:0; font-size:small'>" + " · ".join(links) + "</p>"
    )


class ConversationControls(QObject):
    """The actions of `ConversationEdits` for ``host`` (shortcuts live there)."""

    def __init__(self, host: QWidget, assistant: Assistant, edits: ConversationEdits) -> None:
        super().__init__(host)
        self.assistant, self.edits = assistant, edits

        def make(text: str, icon: str, slot, shortcut: str | None = None) -> QAction:
            action = QAction(qta.icon(icon), text, self)
            if shortcut:
                action.setShortcut(QKeySequence(shortcut))
                action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.triggered.connect(lambda *_: slot())
            host.addAction(action)
            return action

        self.clear_action = make(
            "Clear conversation", "mdi6.chat-remove-outline", edits.clear_conversation
        )
        self.clear_action.setToolTip("Forget the questions and answers of this study (undoable)")
        self.hide_all_action = make(
            "Hide model boxes", "mdi6.eye-off-outline", self._toggle_all, "H"
        )
        self.hide_all_action.setCheckable(True)
        self.hide_all_action.setToolTip("Hide or show every box of the model's answers (H)")
        self.undo_action = make("Undo chat edit", "mdi6.undo", edits.undo, "Ctrl+Alt+Z")
        self.undo_action.setToolTip(
            "Take back clearing, hiding or deleting in the conversation (Ctrl+Alt+Z)"
        )
        self.redo_action = make("Redo chat edit", "mdi6.redo", edits.redo, "Ctrl+Alt+Y")
        self.delete_box_action = make(
            "Delete selected model box", "mdi6.close-box-outline", self.delete_selected
        )
        edits.changed.connect(self._update)
        observe(self, assistant.events.revision, self._update)
        self._update()

    def buttons(self) -> list[QToolButton]:
        """Small icon buttons for the chat's button row (their names in the tool tips)."""
        out = []
        for action in (self.clear_action, self.hide_all_action, self.undo_action):
            button = QToolButton()
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
            out.append(button)
        return out

    def handle_anchor(self, link: str) -> bool:
        """A transcript link "hide:<turn>" or "delete:<turn>:<n>"; False for other links."""
        parts = link.split(":")
        if not all(p.isdigit() for p in parts[1:]):
            return False
        if parts[0] == "hide" and len(parts) == 2:
            turn_id = int(parts[1])
            hidden = turn_id in self.assistant.visibility.hidden_turns
            self.edits.set_turn_hidden(turn_id, not hidden)
            return True
        if parts[0] == "delete" and len(parts) == 3:
            self.edits.delete_box(int(parts[1]), int(parts[2]))
            return True
        return False

    def delete_selected(self) -> bool:
        """Delete the answer box selected in the chat or on the image."""
        selected = self.assistant.selected
        return selected is not None and self.edits.delete_box(*selected)

    def watch_views(self, views: Iterable[QWidget], session, busy_elsewhere=lambda: False) -> None:
        """Delete on a view deletes the selected answer box shown there, unless
        ``busy_elsewhere()`` (a measurement is selected: its Delete comes first)."""
        self._session, self._busy_elsewhere = session, busy_elsewhere
        for view in views:
            view.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() != QEvent.Type.KeyPress:
            return False
        if event.key() not in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            return False
        placed = self.assistant.selected_box()
        if placed is None or self._busy_elsewhere():
            return False
        plane = watched.plane
        on_view = placed.box.plane is plane and placed.box.slice_index == (
            self._session.slice_index(plane)
        )
        return on_view and self.delete_selected()

    def _toggle_all(self) -> None:
        self.edits.set_all_hidden(not self.assistant.visibility.all_hidden)

    def _update(self, *_: object) -> None:
        a = self.assistant
        self.hide_all_action.setChecked(a.visibility.all_hidden)
        self.clear_action.setEnabled(bool(a.turns) and not a.busy)
        self.undo_action.setEnabled(self.edits.can_undo)
        self.redo_action.setEnabled(self.edits.can_redo)
        self.delete_box_action.setEnabled(a.selected is not None and not a.busy)
