"""`ChatPanel`: the conversation with the model about the open study.

It shows the `Assistant`'s turns (streamed answers, boxes listed under each answer with their
colour, clickable to jump to their slice) and offers the actions: Ask (Enter), Find (ground on
this slice), Find in volume (every slice), Analyse image, and — with a box drawn — What is
this? and Describe region. It only calls the `AssistantController`; the one thing it keeps
is which answers' reasoning the user has unfolded (how the view looks, not what was said).

A reasoning model's thought is folded under its answer, one click open; while the model is
still thinking the chat says so and shows the thought as it streams. The transcript's HTML is
written by `birdview.ui.chat_transcript` (``chat_html``, re-exported here).
"""

from __future__ import annotations

import qtawesome as qta
from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QFont, QTextCursor
from PySide6.QtWidgets import (
    QApplication,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import qthrottled

from birdview.core.assistant import Assistant
from birdview.core.conversation_edits import ConversationEdits
from birdview.core.exports import NOTICE
from birdview.core.prompts import Task
from birdview.ui._observe import observe
from birdview.ui.annotation_chat import ConversationControls
from birdview.ui.assistant_controller import AssistantController
from birdview.ui.chat_transcript import chat_html
from birdview.ui.presenter_words import plain_chat

__all__ = ["ChatPanel", "chat_html"]

_NO_MODEL_HINT = (
    "No model is loaded. Choose a checkpoint in the Model panel to ask questions; the viewer "
    "works fully without one."
)


class ChatPanel(QWidget):
    """The chat dock's widget.

    Signals:
        box_clicked(turn_id, index): a box in the transcript was clicked.
    """

    box_clicked = Signal(int, int)

    def __init__(
        self, assistant: Assistant, controller: AssistantController, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._assistant = assistant
        self._controller = controller
        self._font_scale = 1.0
        self.presenter = False
        self._open_reasoning: frozenset[int] = frozenset()

        self.transcript = QTextBrowser()
        self.transcript.setOpenLinks(False)
        self.transcript.anchorClicked.connect(self._on_anchor)
        self.hint = QLabel(_NO_MODEL_HINT)
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: palette(mid); padding: 4px;")

        self.input = QLineEdit()
        self.input.setPlaceholderText("Ask about this slice, or name a structure and press Find")
        self.input.setClearButtonEnabled(True)
        self.input.returnPressed.connect(self.send)
        self.input.textChanged.connect(self._update_enabled)

        self.ask_button = self._button("Ask", "mdi6.send", self.send, "Ask (Enter)")
        self.find_button = self._button(
            "Find", "mdi6.crosshairs-gps", self.find, "Find the named structure on this slice"
        )
        self.sweep_button = self._button(
            "Find in volume",
            "mdi6.layers-search-outline",
            self.find_in_volume,
            "Find the named structure on every slice of this plane",
        )
        self.analyse_button = self._button(
            "Analyse image", "mdi6.text-box-search-outline", self.analyse, "Describe this slice"
        )
        self.what_button = self._button(
            "What is this?", "mdi6.help-box-outline", self.what_is_this, "Name the boxed structure"
        )
        self.describe_button = self._button(
            "Describe region", "mdi6.card-text-outline", self.describe, "Describe the boxed region"
        )
        self.cancel_button = self._button(
            "Cancel", "mdi6.stop-circle-outline", controller.cancel, "Stop the answer (Esc)"
        )

        region_row = QHBoxLayout()
        region_row.addWidget(QLabel("Box:"))
        region_row.addWidget(self.what_button)
        region_row.addWidget(self.describe_button)
        region_row.addStretch(1)
        input_row = QHBoxLayout()
        input_row.addWidget(self.input, 1)
        input_row.addWidget(self.ask_button)
        self._actions = actions = QGridLayout()
        self._place_actions(columns=4)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.hint)
        layout.addWidget(self.transcript, 1)
        layout.addLayout(region_row)
        layout.addLayout(input_row)
        layout.addLayout(actions)
        notice = QLabel(NOTICE)
        notice.setWordWrap(True)  # large in presenter mode: it must not widen the chat
        notice.setStyleSheet("color: #c08000; font-size: small;")
        layout.addWidget(notice)

        self.edits = ConversationEdits(assistant)
        self.conversation = ConversationControls(self, assistant, self.edits)
        edit_row = QHBoxLayout()
        for button in self.conversation.buttons():
            edit_row.addWidget(button)
        edit_row.addStretch(1)
        layout.insertLayout(2, edit_row)  # under the transcript

        self._render_throttled = qthrottled(self._render, timeout=40, parent=self)
        observe(self, assistant.events.revision, self._on_changed)
        observe(self, assistant.events.model, self._on_changed)
        observe(self, assistant.events.user_box, self._on_changed)
        observe(self, assistant.events.selected, self._on_changed)
        self._render()

    # -- actions -------------------------------------------------------------------------------

    def send(self) -> None:
        """Ask the typed question (about the drawn box too, when it mentions "this")."""
        text = self.input.text().strip()
        if not text or not self._can_ask():
            return
        refers = self._assistant.user_box is not None and _mentions_region(text)
        if self._controller.ask(text, use_region=refers) is not None:
            self.input.clear()

    def find(self) -> None:
        text = self.input.text().strip()
        if text and self._can_ask() and self._controller.find(text) is not None:
            self.input.clear()

    def find_in_volume(self) -> None:
        text = self.input.text().strip()
        if text and self._can_ask() and self._controller.find_in_volume(text) is not None:
            self.input.clear()

    def analyse(self) -> None:
        if self._can_ask():
            self._controller.ask("", task=Task.MIA.code)

    def what_is_this(self) -> None:
        if self._can_ask():
            self._controller.ask("", task=Task.ROC.code, use_region=True)

    def describe(self) -> None:
        if self._can_ask():
            self._controller.ask("", task=Task.RC.code, use_region=True)

    def set_presenter(self, on: bool) -> None:
        """Larger text for a projector."""
        self.presenter = bool(on)  # plain words instead of jargon
        self._place_actions(columns=2 if on else 4)
        self._font_scale = 1.5 if on else 1.0
        font = QFont(QApplication.font())
        font.setPointSizeF(QApplication.font().pointSizeF() * self._font_scale)
        self.transcript.setFont(font)
        self.input.setFont(font)
        self._render()

    # -- internals -----------------------------------------------------------------------------

    def _place_actions(self, columns: int) -> None:
        """The action buttons in rows of ``columns`` (two in presenter mode: larger buttons
        in one row would take the image's width)."""
        buttons = (self.find_button, self.sweep_button, self.analyse_button, self.cancel_button)
        for n, button in enumerate(buttons):
            self._actions.addWidget(button, n // columns, n % columns)

    def _button(self, text: str, icon: str, slot, tip: str) -> QPushButton:
        button = QPushButton(qta.icon(icon), text)
        button.setToolTip(tip)
        button.clicked.connect(lambda *_: slot())
        return button

    def _can_ask(self) -> bool:
        return self._assistant.model.ready and not self._assistant.busy

    def _on_changed(self, *_: object) -> None:
        self._render_throttled()

    def _render(self) -> None:
        assistant = self._assistant
        self.hint.setVisible(not assistant.model.ready)
        self.hint.setText(_hint(assistant))
        bar = self.transcript.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 4
        volume = self._controller.session.volume
        text = chat_html(assistant, volume, self._open_reasoning)
        self.transcript.setHtml(plain_chat(text) if self.presenter else text)
        if at_bottom:
            self.transcript.moveCursor(QTextCursor.MoveOperation.End)
            bar.setValue(bar.maximum())
        self._update_enabled()

    def _update_enabled(self, *_: object) -> None:
        can = self._can_ask()
        typed = bool(self.input.text().strip())
        boxed = self._assistant.user_box is not None
        for button, enabled in (
            (self.ask_button, can and typed),
            (self.find_button, can and typed),
            (self.sweep_button, can and typed),
            (self.analyse_button, can),
            (self.what_button, can and boxed),
            (self.describe_button, can and boxed),
        ):
            button.setEnabled(enabled)
        self.cancel_button.setEnabled(self._assistant.busy)

    def _on_anchor(self, url: QUrl) -> None:
        parts = url.toString().split(":")
        if self.conversation.handle_anchor(url.toString()):
            return
        if len(parts) == 3 and parts[0] == "box":
            self.box_clicked.emit(int(parts[1]), int(parts[2]))
        elif len(parts) == 2 and parts[0] == "reasoning" and parts[1].isdigit():
            self._open_reasoning ^= {int(parts[1])}
            self._render()


def _mentions_region(text: str) -> bool:
    words = set(text.lower().replace("?", " ").split())
    return bool(words & {"this", "here", "box", "region", "boxed", "it"})


def _hint(assistant: Assistant) -> str:
    model = assistant.model
    if model.state == "loading":
        return model.message.capitalize() if model.message else "The model is loading…"
    if model.state == "error":
        return f"The model could not be loaded: {model.message}"
    return _NO_MODEL_HINT
