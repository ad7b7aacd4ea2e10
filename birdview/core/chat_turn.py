"""`ChatTurn`: one question about the open study and what came back; `PlacedBox`: an answer
box with the turn it belongs to and its colour slot. Held by `birdview.core.assistant.Assistant`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from birdview.core.box import Box
from birdview.core.extent import Extent
from birdview.core.geometry import Plane

__all__ = ["SWEEP_TASK", "ChatTurn", "PlacedBox", "TurnState"]

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
