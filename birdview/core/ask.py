"""What one ask or one sweep asks for: the options, declared once.

`birdview ask`, the viewer, the client, the worker protocol and the engine all pass these
frozen dataclasses along instead of repeating the options, so a default or a check lives in
one place. A spec is made of strings, numbers, enums and a `Box`: it pickles, and the worker
rebuilds it (`checked`) to refuse one that a sender made without these checks.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from birdview.core.box import Box
from birdview.core.geometry import Plane
from birdview.core.prompts import Task, check_question_length

__all__ = ["AskSpec", "SweepSpec", "ask_spec", "checked", "sweep_spec"]

Spec = TypeVar("Spec", "AskSpec", "SweepSpec")


@dataclass(frozen=True)
class AskSpec:
    """One question about one slice.

    Attributes:
        question: the user's question; may hold ``{region}`` where the region goes, and may
            be blank when ``task`` says what to ask (see `birdview.inference.engine`).
        task: the BiRD task, or None; a `Task` or its code ("VG", "RO", "GC", "MII").
        region: a drawn box, written into the question in the checkpoint's box format.
        plane, slice_index: where the image came from; the answer's boxes carry them.
        max_new_tokens: the generation budget; None lets the model's rules choose by task
            (and lets a reasoning model think on past it).
        stream: send the answer piece by piece as it is generated.

    Raises:
        ValueError: the question is longer than `prompts.MAX_QUESTION_CHARS`, the task or
            plane is unknown, the slice index is negative or the budget below 1.
        TypeError: the slice index or the budget is not an integer.
    """

    question: str = ""
    task: Task | None = None
    region: Box | None = None
    plane: Plane = Plane.AXIAL
    slice_index: int = 0
    max_new_tokens: int | None = None
    stream: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "question", check_question_length(str(self.question)))
        if self.task is not None:
            object.__setattr__(self, "task", Task(self.task))
        if self.region is not None and not isinstance(self.region, Box):
            raise TypeError(f"Unable to ask as the region {self.region!r} is not a Box")
        object.__setattr__(self, "plane", Plane(self.plane))
        object.__setattr__(self, "slice_index", _slice_index(self.slice_index))
        object.__setattr__(self, "max_new_tokens", _budget(self.max_new_tokens))
        object.__setattr__(self, "stream", bool(self.stream))


@dataclass(frozen=True)
class SweepSpec:
    """One question asked of every slice of a volume along ``plane``.

    Attributes:
        question: the question (a grounding question, as a rule).
        plane: the plane whose slices are asked about.
        batch_size: slices answered together (more is faster, and takes more memory).
        max_new_tokens: the budget per slice; None lets the model's rules choose.

    Raises:
        ValueError: the question is too long, the plane unknown, the batch size or the
            budget below 1.
        TypeError: the batch size or the budget is not an integer.
    """

    question: str
    plane: Plane
    batch_size: int = 8
    max_new_tokens: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "question", check_question_length(str(self.question)))
        object.__setattr__(self, "plane", Plane(self.plane))
        batch_size = _integer(self.batch_size, "batch_size")
        if batch_size < 1:
            raise ValueError(f"Unable to sweep as batch_size {batch_size!r} is below 1")
        object.__setattr__(self, "batch_size", batch_size)
        object.__setattr__(self, "max_new_tokens", _budget(self.max_new_tokens))


def ask_spec(question: AskSpec | str, **options: Any) -> AskSpec:
    """``question`` when it is a spec already, else a spec of it and ``options`` (the keyword
    form of `InferenceClient.ask` and `Engine.ask`).

    Raises:
        TypeError: a spec came with options too (they would be silently lost).
    """
    return _spec(AskSpec, question, options)


def sweep_spec(question: SweepSpec | str, plane: Plane | str | None, **options: Any) -> SweepSpec:
    """``question`` when it is a spec already, else a spec of it, ``plane`` and ``options``."""
    if plane is not None:
        options["plane"] = plane
    return _spec(SweepSpec, question, options)


def checked(spec: Spec, kind: type[Spec]) -> Spec:
    """``spec`` validated again, as one that crossed a process boundary must be: unpickling
    restores the fields without running their checks.

    Raises:
        TypeError: it is not a ``kind``.
        ValueError: a field fails its check.
    """
    if not isinstance(spec, kind):
        raise TypeError(f"Unable to answer as the request holds a {type(spec).__name__}")
    return replace(spec)


def _spec(kind: type[Spec], question: Spec | str, options: dict[str, Any]) -> Spec:
    if not isinstance(question, kind):
        return kind(question, **options)
    if options:
        names = ", ".join(sorted(options))
        raise TypeError(f"Unable to ask as {names} came beside a spec; set them in the spec")
    return question


def _slice_index(value: Any) -> int:
    index = _integer(value, "slice index")
    if index < 0:
        raise ValueError(f"Unable to ask as the slice index {index!r} is negative")
    return index


def _budget(value: Any) -> int | None:
    if value is None:
        return None
    tokens = _integer(value, "max_new_tokens")
    if tokens < 1:
        raise ValueError(
            f"Unable to ask as max_new_tokens {tokens!r} is below 1; leave it unset for the "
            "default budget"
        )
    return tokens


def _integer(value: Any, name: str) -> int:
    # operator.index refuses floats and strings, as `Box` does for its slice index.
    try:
        return operator.index(value)
    except TypeError as exc:
        raise TypeError(f"Unable to ask as the {name} {value!r} is not an integer") from exc
