"""What the user can take back from the conversation: clearing it, hiding the model's boxes
(one answer's, or all), deleting one box — each an undo step — and showing an answer's boxes
one at a time (presenter mode).

`BoxVisibility` is the part of the `Assistant` that says which answer boxes are drawn; the
views and exports draw `Assistant.boxes_on`, which asks it. `ConversationEdits` changes the
assistant through snapshots of (turns, visibility, selection), so undo gives back exactly what
was there. A new question, a streamed piece or another study makes the history stale (undo
would drop what came since), so it is forgotten then; edits are refused while the model is
answering. Which boxes are hidden is saved with the study's session (`hidden_answers`,
`visibility_of_record`); a reveal in progress is a presentation and is not. Qt-free.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from psygnal import Signal

__all__ = ["BoxVisibility", "ConversationEdits", "hidden_answers", "visibility_of_record"]

_MAX_UNDO = 100


@dataclass(frozen=True)
class BoxVisibility:
    """Which answer boxes are drawn.

    Attributes:
        hidden_turns: answers whose boxes are hidden.
        all_hidden: every answer box hidden (the user's drawn box still shows).
        reveal: (turn_id, n) while an answer's boxes are shown one at a time: only its first n.
    """

    hidden_turns: frozenset[int] = frozenset()
    all_hidden: bool = False
    reveal: tuple[int, int] | None = None

    def shows_turn(self, turn_id: int) -> bool:
        return not self.all_hidden and turn_id not in self.hidden_turns

    def shows(self, turn_id: int, index: int) -> bool:
        """Whether box ``index`` of answer ``turn_id`` is drawn."""
        if not self.shows_turn(turn_id):
            return False
        if self.reveal is not None and self.reveal[0] == turn_id:
            return index < self.reveal[1]
        return True


def hidden_answers(visibility: BoxVisibility, turns: Iterable) -> tuple[int, ...]:
    """Which answers' boxes are hidden, as positions among the finished ``turns`` (the ones a
    `SessionRecord` keeps, in its order): turn ids are not kept in a saved session."""
    finished = [t for t in turns if t.finished]
    return tuple(n for n, t in enumerate(finished) if t.turn_id in visibility.hidden_turns)


def visibility_of_record(record) -> BoxVisibility:
    """The boxes a restored session shows: its hidden answers (a restore numbers the saved
    turns from 1) and whether all were hidden; no reveal is under way after a restore."""
    return BoxVisibility(
        hidden_turns=frozenset(n + 1 for n in record.hidden_answers),
        all_hidden=record.all_boxes_hidden,
    )


class ConversationEdits:
    """Undoable edits of ``assistant``'s conversation.

    Signals:
        changed(): an edit, undo or redo happened, or the history was forgotten.
    """

    changed = Signal()

    def __init__(self, assistant) -> None:
        self.assistant = assistant
        self._undo: list[tuple] = []
        self._redo: list[tuple] = []
        self._revision: int | None = None  # the assistant's revision after our last change
        assistant.events.study.connect(self._forget)

    # -- edits ---------------------------------------------------------------------------------

    def clear_conversation(self) -> bool:
        """Forget every question and answer of this study (undoable); False when there is
        nothing to clear or the model is answering."""
        a = self.assistant
        if not a.turns or a.busy:
            return False
        self._apply(turns=(), visibility=BoxVisibility(), selected=None)
        return True

    def delete_box(self, turn_id: int, index: int) -> bool:
        """Delete box ``index`` of answer ``turn_id`` (undoable); False when there is no such
        box or the model is answering."""
        a = self.assistant
        turn = a.turn(turn_id)
        if turn is None or a.busy or not 0 <= index < len(turn.boxes):
            return False
        boxes = turn.boxes[:index] + turn.boxes[index + 1 :]
        kept = replace(turn, boxes=boxes)
        turns = tuple(kept if t.turn_id == turn_id else t for t in a.turns)
        selected = None if a.selected and a.selected[0] == turn_id else a.selected
        self._apply(turns=turns, visibility=a.visibility, selected=selected)
        return True

    def set_turn_hidden(self, turn_id: int, hidden: bool) -> bool:
        """Hide or show one answer's boxes (undoable)."""
        a = self.assistant
        if a.turn(turn_id) is None or (turn_id in a.visibility.hidden_turns) == bool(hidden):
            return False
        hidden_turns = set(a.visibility.hidden_turns)
        hidden_turns.symmetric_difference_update({turn_id})
        visibility = replace(a.visibility, hidden_turns=frozenset(hidden_turns))
        self._apply(turns=a.turns, visibility=visibility, selected=a.selected)
        return True

    def set_all_hidden(self, hidden: bool) -> bool:
        """Hide or show every answer box (undoable)."""
        a = self.assistant
        if a.visibility.all_hidden == bool(hidden):
            return False
        visibility = replace(a.visibility, all_hidden=bool(hidden))
        self._apply(turns=a.turns, visibility=visibility, selected=a.selected)
        return True

    # -- showing an answer box by box (not an undo step: a presentation, not an edit) ---------

    def start_reveal(self) -> int | None:
        """Hide the boxes of the latest answer with boxes; returns its turn id (None: none)."""
        a = self.assistant
        turn = next((t for t in reversed(a.turns) if t.finished and t.boxes), None)
        if turn is None:
            return None
        self._show(replace(a.visibility, reveal=(turn.turn_id, 0)))
        return turn.turn_id

    def reveal_next(self) -> int | None:
        """Show one more box of the answer being revealed (starting a reveal when none is);
        returns how many are shown, None when there is no answer with boxes."""
        a = self.assistant
        reveal = a.visibility.reveal
        if reveal is None or a.turn(reveal[0]) is None:
            if self.start_reveal() is None:
                return None
            reveal = a.visibility.reveal
        total = len(a.turn(reveal[0]).boxes)
        shown = min(reveal[1] + 1, total)
        self._show(replace(a.visibility, reveal=(reveal[0], shown)))
        return shown

    def stop_reveal(self) -> None:
        """Every box of the answer is shown again."""
        if self.assistant.visibility.reveal is not None:
            self._show(replace(self.assistant.visibility, reveal=None))

    # -- history -------------------------------------------------------------------------------

    @property
    def can_undo(self) -> bool:
        return bool(self._undo) and self._current()

    @property
    def can_redo(self) -> bool:
        return bool(self._redo) and self._current()

    def undo(self) -> bool:
        if not self.can_undo:
            return False
        self._redo.append(self._snapshot())
        self._restore(self._undo.pop())
        return True

    def redo(self) -> bool:
        if not self.can_redo:
            return False
        self._undo.append(self._snapshot())
        self._restore(self._redo.pop())
        return True

    # -- internals -----------------------------------------------------------------------------

    def _current(self) -> bool:
        """Whether nothing but our edits changed the conversation since the last one."""
        if self._revision != self.assistant.revision:
            self._undo.clear()
            self._redo.clear()
            return False
        return True

    def _snapshot(self) -> tuple:
        a = self.assistant
        return (a.turns, a.visibility, a.selected)

    def _apply(self, **state) -> None:
        self._current()
        self._undo.append(self._snapshot())
        del self._undo[:-_MAX_UNDO]
        self._redo.clear()
        self._restore((state["turns"], state["visibility"], state["selected"]))

    def _restore(self, snapshot: tuple) -> None:
        turns, visibility, selected = snapshot
        a = self.assistant
        self._revision = a.revision + 1  # before the observers of the revision run
        a.visibility = visibility
        a.selected = selected
        a.turns = turns
        a.revision = self._revision
        self.changed.emit()

    def _show(self, visibility: BoxVisibility) -> None:
        a = self.assistant
        if self._revision == a.revision:  # a reveal is no edit: it keeps the history usable
            self._revision = a.revision + 1
        a.visibility = visibility
        a.revision += 1
        self.changed.emit()

    def _forget(self, *_: object) -> None:
        self._undo.clear()
        self._redo.clear()
        self._revision = None
        self.changed.emit()
