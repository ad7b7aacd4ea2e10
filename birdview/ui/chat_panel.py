"""`ChatPanel`: the conversation with the model about the open study.

It shows the `Assistant`'s turns (streamed answers, boxes listed under each answer with their
colour, clickable to jump to their slice) and offers the actions: Ask (Enter), Find (ground on
this slice), Find in volume (every slice), Analyse image, and — with a box drawn — What is
this? and Describe region. It only calls the `AssistantController`; the one thing it keeps
is which answers' reasoning the user has unfolded (how the view looks, not what was said).

A reasoning model's thought is folded under its answer, one click open; while the model is
still thinking the chat says so and shows the thought as it streams.
"""

from __future__ import annotations

import html

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

from birdview.core import families, geometry
from birdview.core.assistant import Assistant, ChatTurn, PlacedBox, readable_answer
from birdview.core.conversation_edits import ConversationEdits
from birdview.core.exports import NOTICE, box_colour
from birdview.core.geometry import Plane
from birdview.core.prompts import Task
from birdview.core.reasoning import Reply, split_reasoning
from birdview.core.volume import Volume
from birdview.ui._observe import observe
from birdview.ui.annotation_chat import ConversationControls, turn_controls_html
from birdview.ui.assistant_controller import AssistantController
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


# -- the transcript as HTML ------------------------------------------------------------------


def chat_html(
    assistant: Assistant, volume: Volume | None = None, open_reasoning: frozenset[int] = frozenset()
) -> str:
    """The conversation as rich text for a QTextBrowser (escaped; links "box:<turn>:<n>" and
    "reasoning:<turn>"); slices are named as the views name them when the conversation's
    ``volume`` is given; the reasoning of the turns in ``open_reasoning`` is unfolded."""
    placed = assistant.placed_boxes()
    by_turn: dict[int, list[PlacedBox]] = {}
    for p in placed:
        by_turn.setdefault(p.turn_id, []).append(p)
    family = assistant.model.family
    parts = [
        _turn_html(
            t, by_turn.get(t.turn_id, []), family, assistant.selected, volume, open_reasoning
        )
        + turn_controls_html(t, by_turn.get(t.turn_id, []), assistant.visibility)
        for t in assistant.turns
    ]
    if not parts:
        parts.append(
            "<p style='color:gray'>Draw a box (B) and ask what it is, or name a structure and "
            "press Find. Answers and their boxes appear here and on the image.</p>"
        )
    return "".join(parts)


def _slice_name(volume: Volume | None, plane: Plane, index: int) -> str:
    """As the views name the slice ("Im 276", "slice 10")."""
    if volume is None:
        return f"slice {index + 1}"
    return geometry.slice_name(volume, plane, index)


def _reading_order(volume: Volume | None, placed: list[PlacedBox]) -> list[PlacedBox]:
    """Boxes in the order their slices are read (axial: from the head down)."""
    if volume is None:
        return sorted(placed, key=lambda p: p.box.slice_index)
    return sorted(
        placed, key=lambda p: geometry.reading_position(volume, p.box.plane, p.box.slice_index)
    )


def _turn_html(
    turn: ChatTurn,
    placed: list[PlacedBox],
    family: str,
    selected: tuple[int, int] | None,
    volume: Volume | None,
    open_reasoning: frozenset[int] = frozenset(),
) -> str:
    where = (
        f"{turn.plane.value} · all slices"
        if turn.is_sweep
        else f"{turn.plane.value} · {_slice_name(volume, turn.plane, turn.slice_index)}"
    )
    region = " · about the drawn box" if turn.region is not None else ""
    out = [
        "<p style='margin-bottom:2px'><b>You</b> "
        f"<span style='color:gray'>({html.escape(where + region)})</span><br>"
        f"{html.escape(turn.question)}</p>"
    ]
    reply = _reply(turn, family)
    answer = _answer_html(turn, family, reply)
    out.append(f"<p style='margin-top:2px; margin-left:10px'>{answer}</p>")
    if turn.warnings:
        out.append(_warnings_html(turn.warnings))
    if reply.reasoning:
        out.append(_reasoning_html(turn, reply, turn.turn_id in open_reasoning))
    if placed and not turn.is_sweep:
        out.append(_box_list_html(placed, selected, volume))
    elif placed:
        out.append(_sweep_boxes_html(turn, placed, selected, volume))
    return "".join(out)


def _warnings_html(warnings: tuple[str, ...]) -> str:
    """What the model card says against the question, next to the answer it qualifies."""
    lines = "<br>".join(f"⚠ {html.escape(warning)}" for warning in warnings)
    return f"<p style='margin-top:0; margin-left:10px; color:#c08000'>{lines}</p>"


def _reply(turn: ChatTurn, family: str) -> Reply:
    """The turn's answer and reasoning: split by the worker once finished, here while the
    answer streams (it then holds both)."""
    if turn.finished:
        return Reply(turn.answer, turn.reasoning)
    thoughts = families.get(family).chat.thoughts if family in families.keys() else ()
    return split_reasoning(turn.answer, thoughts)


def _reasoning_html(turn: ChatTurn, reply: Reply, unfolded: bool) -> str:
    words = len(reply.reasoning.split())
    link = f"reasoning:{turn.turn_id}"
    if reply.thinking:  # shown as it streams: the last lines are what is being thought now
        tail = reply.reasoning[-600:]
        return (
            "<p style='margin-left:20px; margin-top:0; color:gray'><i>"
            f"{html.escape(tail).replace(chr(10), '<br>')}</i></p>"
        )
    if not unfolded:
        return (
            f"<p style='margin-left:20px; margin-top:0'><a href='{link}'>▸ Show the model's "
            f"reasoning ({words} words)</a></p>"
        )
    body = html.escape(reply.reasoning).replace("\n", "<br>")
    return (
        f"<p style='margin-left:20px; margin-top:0'><a href='{link}'>▾ Hide the reasoning</a>"
        f"<br><span style='color:gray'>{body}</span></p>"
    )


def _answer_html(turn: ChatTurn, family: str, reply: Reply) -> str:
    if turn.is_sweep and not turn.finished:
        done, total = turn.progress
        return f"<i>Searching every {turn.plane.value} slice… {done}/{total}</i>"
    text = html.escape(readable_answer(reply.answer, family))
    if turn.state == "waiting" or (turn.state == "streaming" and reply.thinking):
        text = "<i style='color:gray'>Thinking…</i>"
    elif turn.state == "streaming":
        text += " ▍"
    elif turn.state == "cancelled":
        text += " <i style='color:gray'>(stopped)</i>"
    elif turn.state == "done" and not text:
        text = "<i style='color:gray'>(empty answer)</i>"
    if turn.state == "error":
        text += f"<br><span style='color:#d04040'>⚠ {html.escape(turn.error)}</span>"
    if turn.dropped:
        noun = "part" if len(turn.dropped) == 1 else "parts"
        text += (
            f"<br><span style='color:#c08000'>{len(turn.dropped)} box {noun} of the answer "
            "could not be read and were left out.</span>"
        )
    if turn.state == "done" and not turn.is_sweep and turn.task == "VG" and not turn.boxes:
        text += "<br><span style='color:gray'>No box in the answer.</span>"
    if turn.seconds and turn.finished:
        text += f" <span style='color:gray; font-size:small'>({turn.seconds:.1f} s)</span>"
    return f"<b>Model:</b> {text}"


def _swatch(colour: int) -> str:
    r, g, b = box_colour(colour)
    return f"<span style='color:#{r:02x}{g:02x}{b:02x}'>■</span>"


def _box_list_html(
    placed: list[PlacedBox], selected: tuple[int, int] | None, volume: Volume | None
) -> str:
    items = []
    for p in placed:
        label = html.escape(p.box.label or "(unnamed)")
        mark = "<b>" if selected == (p.turn_id, p.index) else ""
        end = "</b>" if mark else ""
        size = f"{p.box.width_px:.0f}×{p.box.height_px:.0f} px"
        where = _slice_name(volume, p.box.plane, p.box.slice_index)
        items.append(
            f"{_swatch(p.colour)} <a href='box:{p.turn_id}:{p.index}'>{mark}{label}{end}</a> "
            f"<span style='color:gray'>{where}, {size}</span>"
        )
    return "<p style='margin-left:20px; margin-top:0'>" + "<br>".join(items) + "</p>"


def _sweep_boxes_html(
    turn: ChatTurn,
    placed: list[PlacedBox],
    selected: tuple[int, int] | None,
    volume: Volume | None,
) -> str:
    """A sweep's slices as links: the first, middle and last slice with a finding, in the
    order the slices are read."""
    ordered = _reading_order(volume, placed)
    picks = {0: "first", len(ordered) // 2: "middle", len(ordered) - 1: "last"}
    links = []
    for n, pick in sorted(picks.items()):
        p = ordered[n]
        where = _slice_name(volume, p.box.plane, p.box.slice_index)
        links.append(f"<a href='box:{p.turn_id}:{p.index}'>{pick} ({where})</a>")
    extent = turn.extent
    details = ""
    if extent is not None:
        lo, hi = extent.lps_min_mm, extent.lps_max_mm
        details = (
            "<br><span style='color:gray'>3D box (LPS mm): "
            f"x {lo[0]:.0f}…{hi[0]:.0f}, y {lo[1]:.0f}…{hi[1]:.0f}, z {lo[2]:.0f}…{hi[2]:.0f}"
            "</span>"
        )
    return (
        f"<p style='margin-left:20px; margin-top:0'>{_swatch(ordered[0].colour)} "
        f"{len(ordered)} boxes: " + " · ".join(links) + details + "</p>"
    )
