"""The session file's format: `SessionRecord` (a study's conversation, the study it belongs to,
the model that answered) and its JSON, read without trusting the file.

Reading checks types, numbers, identities and nesting, and every problem comes out as one
`ValueError`. Files (their size, atomic writes, which study a file belongs to) are
`birdview.core.session_store`, which re-exports these names.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from birdview.core.box import Box
from birdview.core.volume import Volume

__all__ = [
    "SCHEMA_VERSION",
    "ModelInfo",
    "RecordedTurn",
    "SessionRecord",
    "StudyRef",
    "box_from_dict",
    "box_to_dict",
]

# 2: the record carries its study's identity; version 1 files (which could hold another
# study's conversation, see `SessionRecord.from_json`) are set aside, never shown.
SCHEMA_VERSION = 2
_FORMAT = "birdview-session"
_IDENTITY = re.compile(r"^(series|content)-sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ModelInfo:
    """Which model answered: its name, family ("bird", "qwen2-vl"...), precision and the
    SHA-256 of its checkpoint ("" when not known)."""

    name: str = ""
    family: str = ""
    precision: str = ""
    checkpoint_sha256: str = ""


@dataclass(frozen=True)
class StudyRef:
    """The study a conversation belongs to: its identity (`Volume.identity`), the file or
    folder it was opened from and its series description."""

    identity: str
    paths: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        _check_identity(self.identity)
        object.__setattr__(self, "paths", tuple(str(p) for p in self.paths))

    @classmethod
    def of(cls, volume: Volume) -> StudyRef:
        return cls(
            volume.identity,
            tuple(s.path for s in volume.sources[:1]),
            str(volume.metadata.get("series_description", "")),
        )


@dataclass(frozen=True)
class RecordedTurn:
    """One question, the model's answer, the boxes found in it, the task, when it was asked
    (ISO 8601), the slice it was about (plane value and index; "" and 0 when unknown), the
    question as the model got it (region written in), the drawn region it referred to, the
    reasoning a reasoning model gave before its answer and the warnings shown beside the
    answer (the study or the structure outside the model card)."""

    question: str
    answer: str
    boxes: tuple[Box, ...] = ()
    task: str = ""
    asked_at: str = ""
    plane: str = ""
    slice_index: int = 0
    model_question: str = ""
    region: Box | None = None
    reasoning: str = ""
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "boxes", tuple(self.boxes))
        object.__setattr__(self, "warnings", tuple(self.warnings))


@dataclass(frozen=True)
class SessionRecord:
    """Everything needed to reopen a study session.

    Attributes:
        study_identity: `Volume.identity` of the study the conversation is about.
        study_paths: the files or folders the study was opened from.
        series_description: as in the DICOM header ("" when none).
        model: the model that answered.
        created_at, updated_at: ISO 8601 timestamps.
        turns: the conversation, oldest first.
        user_boxes: boxes drawn by the user, not produced by the model.
        hidden_answers: positions in ``turns`` (from 0) of the answers whose boxes the user
            hid (*Hide boxes*).
        all_boxes_hidden: every answer box hidden (`H`).
    """

    study_identity: str
    study_paths: tuple[str, ...] = ()
    series_description: str = ""
    model: ModelInfo = field(default_factory=ModelInfo)
    created_at: str = ""
    updated_at: str = ""
    turns: tuple[RecordedTurn, ...] = ()
    user_boxes: tuple[Box, ...] = ()
    hidden_answers: tuple[int, ...] = ()
    all_boxes_hidden: bool = False

    def __post_init__(self) -> None:
        _check_identity(self.study_identity)
        object.__setattr__(self, "study_paths", tuple(str(p) for p in self.study_paths))
        object.__setattr__(self, "turns", tuple(self.turns))
        object.__setattr__(self, "user_boxes", tuple(self.user_boxes))
        hidden = tuple(sorted(set(self.hidden_answers)))
        for n in hidden:
            if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < len(self.turns):
                raise ValueError(
                    f"Unable to hide the boxes of answer {n!r} as the session has "
                    f"{len(self.turns)} answers"
                )
        object.__setattr__(self, "hidden_answers", hidden)
        object.__setattr__(self, "all_boxes_hidden", bool(self.all_boxes_hidden))

    def to_json(self) -> str:
        """The record as JSON text, with a format name and schema version."""
        data = {
            "format": _FORMAT,
            "schema_version": SCHEMA_VERSION,
            "study_identity": self.study_identity,
            "study_paths": list(self.study_paths),
            "series_description": self.series_description,
            "model": {
                "name": self.model.name,
                "family": self.model.family,
                "precision": self.model.precision,
                "checkpoint_sha256": self.model.checkpoint_sha256,
            },
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "turns": [
                {
                    "question": t.question,
                    "answer": t.answer,
                    "boxes": [box_to_dict(b) for b in t.boxes],
                    "task": t.task,
                    "asked_at": t.asked_at,
                    "plane": t.plane,
                    "slice_index": t.slice_index,
                    "model_question": t.model_question,
                    "region": box_to_dict(t.region) if t.region is not None else None,
                    "reasoning": t.reasoning,
                    "warnings": list(t.warnings),
                }
                for t in self.turns
            ],
            "user_boxes": [box_to_dict(b) for b in self.user_boxes],
            "hidden_answers": list(self.hidden_answers),
            "all_boxes_hidden": self.all_boxes_hidden,
        }
        return json.dumps(data, ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str) -> SessionRecord:
        """The record written by `to_json`.

        Raises:
            ValueError: the text is not JSON, not a BirdView session, of another schema, too
                deeply nested, or has missing, mistyped or non-finite fields.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"Unable to read the session as it is not valid JSON ({exc.msg} at line "
                f"{exc.lineno})"
            ) from None
        except RecursionError:
            raise ValueError("Unable to read the session as it is nested too deeply") from None
        except ValueError as exc:  # e.g. an integer longer than Python converts
            raise ValueError(f"Unable to read the session as {exc}") from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError("Unable to read the session as it is not a BirdView session file")
        version = data.get("schema_version")
        if version == 1:
            raise ValueError(
                "Unable to restore the session as it was saved by an older BirdView that did not "
                "record which study it belongs to (such files could hold another study's "
                "conversation)"
            )
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"Unable to read the session as its schema version {version!r} is not supported "
                f"(this BirdView reads version {SCHEMA_VERSION})"
            )
        try:
            return _record_from(data)
        except (KeyError, TypeError, AttributeError, ValueError, OverflowError) as exc:
            raise ValueError(
                f"Unable to read the session as a field is missing or malformed ({exc!s})"
            ) from None


def _record_from(data: Mapping[str, Any]) -> SessionRecord:
    model = _field(data, "model", dict, {})
    return SessionRecord(
        study_identity=_field(data, "study_identity", str),
        study_paths=tuple(_text(p) for p in _field(data, "study_paths", list, [])),
        series_description=_field(data, "series_description", str, ""),
        model=ModelInfo(
            _field(model, "name", str, ""),
            _field(model, "family", str, ""),
            _field(model, "precision", str, ""),
            _field(model, "checkpoint_sha256", str, ""),
        ),
        created_at=_field(data, "created_at", str, ""),
        updated_at=_field(data, "updated_at", str, ""),
        turns=tuple(_turn_from(t) for t in _field(data, "turns", list, [])),
        user_boxes=tuple(box_from_dict(b) for b in _field(data, "user_boxes", list, [])),
        # Sessions saved before these were kept show every box, as they did then.
        hidden_answers=tuple(
            _whole(n, "a hidden answer") for n in _field(data, "hidden_answers", list, [])
        ),
        all_boxes_hidden=_field(data, "all_boxes_hidden", bool, False),
    )


def _turn_from(data: object) -> RecordedTurn:
    if not isinstance(data, dict):
        raise TypeError(f"a turn is {type(data).__name__!r}, not an object")
    region = _field(data, "region", (dict, type(None)), None)
    if _field(data, "slice_index", int, 0) < 0:
        raise ValueError(f"the slice index {data['slice_index']!r} is negative")
    return RecordedTurn(
        question=_field(data, "question", str),
        answer=_field(data, "answer", str),
        boxes=tuple(box_from_dict(b) for b in _field(data, "boxes", list, [])),
        task=_field(data, "task", str, ""),
        asked_at=_field(data, "asked_at", str, ""),
        plane=_field(data, "plane", str, ""),
        slice_index=_field(data, "slice_index", int, 0),
        model_question=_field(data, "model_question", str, ""),
        region=box_from_dict(region) if region else None,
        reasoning=_field(data, "reasoning", str, ""),
        warnings=tuple(_text(w, "a warning") for w in _field(data, "warnings", list, [])),
    )


_MISSING = object()


def _field(data: Mapping[str, Any], key: str, kind: type | tuple, default: Any = _MISSING):
    """``data[key]``, checked to be of ``kind`` (booleans are not numbers here)."""
    if key not in data:
        if default is _MISSING:
            raise KeyError(f"{key!r} is missing")
        return default
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
        raise TypeError(f"{key!r} is {type(value).__name__!r}")
    return value


def _text(value: object, what: str = "a path") -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} is {type(value).__name__!r}")
    return value


def _whole(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} is {type(value).__name__!r}")
    return value


def _number(data: Mapping[str, Any], key: str) -> float:
    value = _field(data, key, (int, float))
    if not math.isfinite(value):
        raise ValueError(f"{key!r} is {value!r}")
    return float(value)


def _check_identity(identity: object) -> None:
    if not isinstance(identity, str) or not _IDENTITY.match(identity):
        raise ValueError(
            f"Unable to use {identity!r} as a study identity; expected the value of Volume.identity"
        )


def box_to_dict(box: Box) -> dict[str, Any]:
    """A box as JSON-ready data: plane value, slice index, edges, label, score, flags."""
    return {
        "plane": box.plane.value,
        "slice_index": box.slice_index,
        "x1_px": box.x1_px,
        "y1_px": box.y1_px,
        "x2_px": box.x2_px,
        "y2_px": box.y2_px,
        "label": box.label,
        "score": box.score,
        "flags": list(box.flags),
    }


def box_from_dict(data: Mapping[str, Any]) -> Box:
    """The box written by `box_to_dict`, its types and numbers checked.

    Raises:
        KeyError, TypeError, ValueError: a field is missing or invalid.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"a box is {type(data).__name__!r}, not an object")
    score = _field(data, "score", (int, float, type(None)), None)
    if score is not None and not math.isfinite(score):
        raise ValueError(f"'score' is {score!r}")
    return Box(
        _field(data, "plane", str),
        _field(data, "slice_index", int),
        *(_number(data, key) for key in ("x1_px", "y1_px", "x2_px", "y2_px")),
        label=_field(data, "label", str, ""),
        score=score,
        flags=tuple(_text(f) for f in _field(data, "flags", list, [])),
    )
