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
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from psygnal import evented

from birdview.core import families
from birdview.core.box import Box
from birdview.core.conversation_edits import BoxVisibility
from birdview.core.extent import Extent, extent_of
from birdview.core.geometry import Plane, slice_count
from birdview.core.model_card import ModelCard
from birdview.core.prompts import Task
from birdview.core.session_store import (
    ModelInfo,
    RecordedTurn,
    SessionRecord,
    StudyRef,
    ensure_same_study,
)
from birdview.core.volume import Volume

__all__ = ["SWEEP_TASK", "Assistant", "ChatTurn", "ModelState", "PlacedBox", "readable_answer"]

TurnState = Literal["waiting", "streaming", "done", "cancelled", "error"]
SWEEP_TASK = "VG3D"  # a grounding question swept over every slice of a plane


@dataclass(frozen=True)
class ChatTurn:
    """One question and what came back.

    Attributes:
        turn_id: unique within the assistant, never reused.
        question: as the user asked it (or the quick action's wording).
        task: a `Task` code ("VG", "RO", "GC", "MII"), `SWEEP_TASK`, or "" for free text.
        plane, slice_index: the slice asked about (for a sweep: the plane swept).
        region: the drawn box the question refers to, if any.
        answer: the model's text so far, markup kept (the model reads it back in later turns).
        model_question: the question as the model got it (region written in).
        boxes: boxes parsed from the answer (a sweep: on every slice where it found one).
        state: "waiting", "streaming", "done", "cancelled" or "error".
        error: what went wrong, for people.
        progress: (done, total) slices of a sweep.
        extent: a sweep's 3D extent, when it found anything.
        asked_at: ISO 8601 time of the question.
        seconds: time the answer took.
        dropped: box fragments in the answer that could not be read, with reasons.
        reasoning: the thought a reasoning model gave before its answer ("" when none);
            while streaming, ``answer`` holds both and the chat splits them.
        warnings: why the answer deserves less trust (the study or the structure lies outside
            what the model card says it was trained on), shown beside it.
    """

    turn_id: int
    question: str
    task: str = ""
    plane: Plane = Plane.AXIAL
    slice_index: int = 0
    region: Box | None = None
    answer: str = ""
    model_question: str = ""
    boxes: tuple[Box, ...] = ()
    state: TurnState = "waiting"
    error: str = ""
    progress: tuple[int, int] = (0, 0)
    extent: Extent | None = None
    asked_at: str = ""
    seconds: float = 0.0
    dropped: tuple[str, ...] = ()
    reasoning: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def finished(self) -> bool:
        return self.state in ("done", "cancelled", "error")

    @property
    def is_sweep(self) -> bool:
        return self.task == SWEEP_TASK


@dataclass(frozen=True)
class PlacedBox:
    """A box to draw: which turn it belongs to, its index in that turn, and its colour slot."""

    turn_id: int
    index: int
    box: Box
    colour: int


@dataclass(frozen=True)
class ModelState:
    """What the model side is doing, for the model panel and the chat's enabled actions.

    ``state``: "none" (nothing configured), "starting", "loading", "ready" or "error".
    ``card``: the checkpoint's model card (None when it has none); ``card_problem``: why a
    card that is there could not be read (the model is usable all the same).
    """

    state: Literal["none", "starting", "loading", "ready", "error"] = "none"
    model_dir: str = ""
    family: str = ""
    precision: str = ""
    device: str = ""
    memory_bytes: int = 0
    message: str = ""
    notices: tuple[str, ...] = ()
    checkpoint_sha256: str = ""
    card: ModelCard | None = None
    card_problem: str = ""

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def info(self) -> ModelInfo:
        name = self.model_dir.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
        return ModelInfo(
            name=name,
            family=self.family,
            precision=self.precision,
            checkpoint_sha256=self.checkpoint_sha256,
        )


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
        """The finished turns and the drawn box, as a record of this conversation's study.

        Raises:
            ValueError: no study is open.
        """
        if self.study is None:
            raise ValueError("Unable to make a session record as no study is open")
        turns = [
            RecordedTurn(
                question=t.question,
                answer=t.answer if t.state != "error" else f"[error] {t.error}",
                boxes=t.boxes,
                task=t.task,
                asked_at=t.asked_at,
                plane=t.plane.value,
                slice_index=t.slice_index,
                model_question=t.model_question,
                region=t.region,
                reasoning=t.reasoning,
                warnings=t.warnings,
            )
            for t in self.turns
            if t.finished
        ]
        now = _now()
        return SessionRecord(
            study_identity=self.study.identity,
            study_paths=self.study.paths,
            series_description=self.study.description,
            model=self.model.info(),
            created_at=created_at or (self.turns[0].asked_at if self.turns else now),
            updated_at=now,
            turns=tuple(turns),
            user_boxes=(self.user_box,) if self.user_box is not None else (),
        )

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
        _check_slices(record, volume)
        turns = []
        for n, saved in enumerate(record.turns, start=1):
            first = saved.boxes[0] if saved.boxes else None
            plane = saved.plane or (first.plane.value if first else Plane.AXIAL.value)
            turn = ChatTurn(
                turn_id=n,
                question=saved.question,
                task=saved.task,
                plane=Plane(plane),
                slice_index=saved.slice_index
                if saved.plane
                else (first.slice_index if first else 0),
                region=saved.region,
                answer=saved.answer,
                model_question=saved.model_question or saved.question,
                boxes=saved.boxes,
                state="done",
                asked_at=saved.asked_at,
                reasoning=saved.reasoning,
                warnings=saved.warnings,
            )
            if turn.is_sweep and turn.boxes:
                turn = replace(turn, extent=extent_of(volume, turn.boxes))
            turns.append(turn)
        self.turns = tuple(turns)
        self.user_box = record.user_boxes[0] if record.user_boxes else None
        self.selected = None
        self.visibility = BoxVisibility()
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


_MARKUP = re.compile(r"<\|[a-z_]+\|>|</?(?:ref|box|quad)>")


# "located at ." once a JSON box is taken out: the sentence points at the box drawn instead.
_DANGLING = re.compile(r"\b(at|in)\s*([.:]?)\s*$")


def readable_answer(text: str, family: str = "") -> str:
    """The answer as people read it: box markup replaced by the box's label, or by "the box
    shown" where a sentence would end on "at" (the boxes are listed and drawn separately),
    special tokens removed, also mid-stream. An answer that is nothing but boxes (a JSON
    block) reads as their labels."""
    codec = families.get(family).codec if family in families.keys() else None
    labels: list[str] = []
    if codec is not None:
        # Only the text is kept, so any sizes do; pixel-unit families need the model's too.
        size = (1000, 1000)
        parsed = codec.parse(text, size, plane=Plane.AXIAL, slice_index=0, model_size_px=size)
        text = parsed.text_without_boxes
        labels = list(dict.fromkeys(box.label or "the box shown" for box in parsed.boxes))
        if parsed.boxes:
            text = _DANGLING.sub(lambda m: f"{m.group(1)} the box shown{m.group(2) or '.'}", text)
    readable = " ".join(_MARKUP.sub("", text).split())
    return readable or ", ".join(labels)


def _check_slices(record: SessionRecord, volume: Volume) -> None:
    places = [(b.plane, b.slice_index) for b in record.user_boxes]
    for turn in record.turns:
        places += [(b.plane, b.slice_index) for b in (*turn.boxes, turn.region) if b]
        if turn.plane:
            places.append((Plane(turn.plane), turn.slice_index))
    for plane, index in places:
        count = slice_count(volume, plane)
        if not 0 <= index < count:
            raise ValueError(
                f"Unable to restore the session as it refers to {plane.value} slice {index} "
                f"of a study with {count}"
            )


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
