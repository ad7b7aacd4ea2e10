"""`Assistant`: the conversation with the model about the open study, observable and Qt-free.

It holds what the chat panel and the slice views show: the turns (question, streamed answer,
boxes, state), the box the user drew, the box the user picked in the chat, and the model's
state. The Qt layer feeds it the worker's replies (on the GUI thread) and observes its signals;
it never calls the model itself. A turn is one question about one slice, or a volume sweep
("Find in volume") whose boxes lie on many slices and whose extent is summarised.

The conversation belongs to one study (`study`, set by `clear` when a study opens): records
it writes carry that study's identity, and `restore` refuses a record of another study.
Sessions round-trip through `birdview.core.session_store.SessionRecord`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from psygnal import evented

# The turn, model state and answer text have their own modules; callers import them from here.
from birdview.core.answer_text import readable_answer
from birdview.core.assistant_record import session_record, turns_from_record
from birdview.core.box import Box
from birdview.core.chat_turn import SWEEP_TASK, ChatTurn, PlacedBox
from birdview.core.conversation_edits import (
    BoxVisibility,
    hidden_answers,
    visibility_of_record,
)
from birdview.core.extent import Extent, extent_of
from birdview.core.geometry import Plane
from birdview.core.model_state import ModelState
from birdview.core.prompts import Task
from birdview.core.session_store import SessionRecord, StudyRef, ensure_same_study
from birdview.core.volume import Volume

__all__ = ["SWEEP_TASK", "Assistant", "ChatTurn", "ModelState", "PlacedBox", "readable_answer"]


@evented
@dataclass
class Assistant:
    """The conversation about the open study.

    Attributes:
        study: the study the conversation is about (None when nothing is open).
        turns: oldest first.
        user_box: the box the user drew (the region of the next question), or None.
        selected: (turn_id, box index) the user picked, or None.
        model: the model's state.
        visibility: which answer boxes are drawn (`birdview.core.conversation_edits`).
        revision: bumped on every change of a turn's content (streaming pieces included), so a
            view can observe one signal.
    """

    study: StudyRef | None = None
    turns: tuple[ChatTurn, ...] = ()
    user_box: Box | None = None
    selected: tuple[int, int] | None = None
    model: ModelState = field(default_factory=ModelState)
    revision: int = 0
    visibility: BoxVisibility = field(default_factory=BoxVisibility)

    # -- asking --------------------------------------------------------------------------------

    def begin(
        self,
        question: str,
        *,
        task: str = "",
        plane: Plane = Plane.AXIAL,
        slice_index: int = 0,
        region: Box | None = None,
        warnings: Sequence[str] = (),
    ) -> ChatTurn:
        """Add a question waiting for its answer (with the warnings to show beside it);
        returns the new turn."""
        turn = ChatTurn(
            turn_id=self._next_id(),
            question=str(question),
            task=_task_code(task),
            plane=Plane(plane),
            slice_index=int(slice_index),
            region=region,
            asked_at=_now(),
            warnings=tuple(str(w) for w in warnings),
        )
        self._set_turns((*self.turns, turn))
        return turn

    def add_text(self, turn_id: int, piece: str) -> None:
        """Append a streamed piece to a turn's answer."""
        turn = self.turn(turn_id)
        if turn is not None and not turn.finished:
            self._replace(turn, answer=turn.answer + piece, state="streaming")

    def set_progress(self, turn_id: int, done: int, total: int) -> None:
        turn = self.turn(turn_id)
        if turn is not None and not turn.finished:
            self._replace(turn, progress=(int(done), int(total)), state="streaming")

    def finish(
        self,
        turn_id: int,
        *,
        answer: str,
        boxes: Sequence[Box] = (),
        model_question: str = "",
        seconds: float = 0.0,
        cancelled: bool = False,
        dropped: Sequence[str] = (),
        reasoning: str = "",
    ) -> None:
        """A single-slice answer arrived (complete, or cut short by a cancel)."""
        turn = self.turn(turn_id)
        if turn is None or turn.finished:
            return
        self._replace(
            turn,
            answer=answer,
            boxes=tuple(boxes),
            model_question=model_question or turn.question,
            seconds=float(seconds),
            state="cancelled" if cancelled else "done",
            dropped=tuple(dropped),
            reasoning=str(reasoning),
        )

    def finish_sweep(
        self,
        turn_id: int,
        volume: Volume,
        slice_boxes: Iterable[Box],
        *,
        cancelled: bool = False,
        seconds: float = 0.0,
    ) -> None:
        """A volume sweep ended: keep every slice's boxes and summarise their extent."""
        turn = self.turn(turn_id)
        if turn is None or turn.finished:
            return
        boxes = tuple(b for b in slice_boxes if b.plane is turn.plane)
        extent = extent_of(volume, boxes)
        self._replace(
            turn,
            boxes=boxes,
            extent=extent,
            answer=_sweep_text(turn, extent, cancelled),
            seconds=float(seconds),
            state="cancelled" if cancelled else "done",
        )

    def fail(self, turn_id: int, message: str) -> None:
        """The question could not be answered; the turn keeps what had streamed."""
        turn = self.turn(turn_id)
        if turn is not None and not turn.finished:
            self._replace(turn, state="error", error=str(message))

    # -- reading -------------------------------------------------------------------------------

    def turn(self, turn_id: int) -> ChatTurn | None:
        for turn in self.turns:
            if turn.turn_id == turn_id:
                return turn
        return None

    @property
    def busy(self) -> bool:
        """Whether a question is still being answered."""
        return any(not turn.finished for turn in self.turns)

    def history_for(self, plane: Plane, slice_index: int) -> list[tuple[str, str]]:
        """Earlier (question as sent, answer) pairs about the same slice: the model sees one
        image per conversation, so questions about other slices are not its history."""
        plane = Plane(plane)
        return [
            (turn.model_question, turn.answer)
            for turn in self.turns
            if turn.state == "done"
            and not turn.is_sweep
            and turn.plane is plane
            and turn.slice_index == slice_index
            and turn.answer
        ]

    def placed_boxes(self) -> list[PlacedBox]:
        """Every answer box with a colour slot: one slot per box of a single-slice answer, one
        per sweep (its boxes show the same structure on many slices)."""
        placed: list[PlacedBox] = []
        slot = 0
        for turn in self.turns:
            if turn.is_sweep:
                placed += [PlacedBox(turn.turn_id, n, b, slot) for n, b in enumerate(turn.boxes)]
                slot += 1 if turn.boxes else 0
                continue
            for n, box in enumerate(turn.boxes):
                placed.append(PlacedBox(turn.turn_id, n, box, slot))
                slot += 1
        return placed

    def boxes_on(self, plane: Plane, slice_index: int) -> list[PlacedBox]:
        """The answer boxes drawn on a slice (those hidden left out)."""
        plane = Plane(plane)
        return [
            p
            for p in self.placed_boxes()
            if p.box.plane is plane
            and p.box.slice_index == slice_index
            and self.visibility.shows(p.turn_id, p.index)
        ]

    def selected_box(self) -> PlacedBox | None:
        if self.selected is None:
            return None
        for placed in self.placed_boxes():
            if (placed.turn_id, placed.index) == self.selected:
                return placed
        return None

    # -- user actions --------------------------------------------------------------------------

    def set_user_box(self, box: Box | None) -> None:
        if box is not None and not isinstance(box, Box):
            raise TypeError(f"Unable to use {type(box).__name__!r} as the drawn box")
        self.user_box = box

    def select(self, turn_id: int, index: int) -> PlacedBox | None:
        """Pick an answer box (e.g. clicked in the chat); returns it, or None if unknown."""
        self.selected = (int(turn_id), int(index))
        return self.selected_box()

    def set_model(self, model: ModelState) -> None:
        self.model = model

    def clear(self, study: StudyRef | None = None) -> None:
        """Forget the conversation and start an empty one about ``study`` (None: no study is
        open); the model state stays."""
        if study is not None and not isinstance(study, StudyRef):
            raise TypeError(f"Unable to use {type(study).__name__!r} as the study")
        self.study = study
        self.turns = ()
        self.user_box = None
        self.selected = None
        self.visibility = BoxVisibility()
        self.revision += 1

    # -- sessions ------------------------------------------------------------------------------

    def to_record(self, *, created_at: str = "") -> SessionRecord:
        """The finished turns, the drawn box and which answer boxes are hidden, as a record
        of this conversation's study.

        Raises:
            ValueError: no study is open.
        """
        if self.study is None:
            raise ValueError("Unable to make a session record as no study is open")
        now = _now()
        record = session_record(
            self.study,
            self.model.info(),
            self.turns,
            self.user_box,
            created_at=created_at or (self.turns[0].asked_at if self.turns else now),
            updated_at=now,
        )
        hidden = hidden_answers(self.visibility, self.turns)
        return replace(record, hidden_answers=hidden, all_boxes_hidden=self.visibility.all_hidden)

    def restore(self, record: SessionRecord, volume: Volume) -> None:
        """Replace the conversation with a saved one of this study (extents are recomputed
        from ``volume``). Nothing changes when the record is refused.

        Raises:
            ValueError: the record is about another study than ``volume`` or the open
                conversation, or one of its boxes lies on a slice ``volume`` does not have.
        """
        ensure_same_study(record, volume)
        if self.study is None or self.study.identity != record.study_identity:
            raise ValueError("Unable to restore the session as another study is open")
        self.turns = turns_from_record(record, volume)
        self.user_box = record.user_boxes[0] if record.user_boxes else None
        self.selected = None
        self.visibility = visibility_of_record(record)  # boxes hidden stay hidden
        self.revision += 1

    # -- internals -----------------------------------------------------------------------------

    def _next_id(self) -> int:
        return max((t.turn_id for t in self.turns), default=0) + 1

    def _replace(self, turn: ChatTurn, **changes: Any) -> None:
        new = replace(turn, **changes)
        self._set_turns(tuple(new if t.turn_id == turn.turn_id else t for t in self.turns))

    def _set_turns(self, turns: tuple[ChatTurn, ...]) -> None:
        self.turns = turns
        self.revision += 1


def _task_code(task: str | Task) -> str:
    if isinstance(task, Task):
        return task.code
    task = str(task or "")
    if task in ("", SWEEP_TASK):
        return task
    return Task(task).code


def _sweep_text(turn: ChatTurn, extent: Extent | None, cancelled: bool) -> str:
    done, total = turn.progress
    scope = f" (stopped after {done} of {total} slices)" if cancelled else ""
    if extent is None:
        return f"Not found on any {turn.plane.value} slice{scope}."
    return f"Found on {extent.summary()}{scope}."


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
