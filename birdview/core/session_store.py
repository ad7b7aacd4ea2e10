"""Saving a study session (the questions, answers and boxes) to disk, and reading it back.

A `SessionRecord` is plain, patient-free data: it names the study by a hash-like key (for
example `Volume.short_id`), never by patient name, so its file name and content are safe to keep
in an autosave folder. Writes are atomic: `save_atomic` writes a temporary file in the same
folder, flushes it to disk and renames it over the old file, so a crash mid-save leaves the
previous version intact.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from birdview.core.box import Box
from birdview.core.volume import short_id

__all__ = [
    "SCHEMA_VERSION",
    "ModelInfo",
    "RecordedTurn",
    "SessionRecord",
    "box_from_dict",
    "box_to_dict",
    "default_session_dir",
    "load_record",
    "save_atomic",
    "session_path",
    "write_atomic",
]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_FORMAT = "birdview-session"
_SAFE_KEY = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class ModelInfo:
    """Which model answered: its name, family ("bird", "qwen2-vl"...) and precision."""

    name: str = ""
    family: str = ""
    precision: str = ""


@dataclass(frozen=True)
class RecordedTurn:
    """One question, the model's answer, the boxes found in it, the task, when it was asked
    (ISO 8601), the slice it was about (plane value and index; "" and 0 when unknown), the
    question as the model got it (region written in) and the drawn region it referred to."""

    question: str
    answer: str
    boxes: tuple[Box, ...] = ()
    task: str = ""
    asked_at: str = ""
    plane: str = ""
    slice_index: int = 0
    model_question: str = ""
    region: Box | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "boxes", tuple(self.boxes))


@dataclass(frozen=True)
class SessionRecord:
    """Everything needed to reopen a study session.

    Attributes:
        study_key: a patient-free name of the study (e.g. `Volume.short_id`).
        study_paths: the files or folders the study was opened from.
        series_description: as in the DICOM header ("" when none).
        model: the model that answered.
        created_at, updated_at: ISO 8601 timestamps.
        turns: the conversation, oldest first.
        user_boxes: boxes drawn by the user, not produced by the model.
    """

    study_key: str
    study_paths: tuple[str, ...] = ()
    series_description: str = ""
    model: ModelInfo = field(default_factory=ModelInfo)
    created_at: str = ""
    updated_at: str = ""
    turns: tuple[RecordedTurn, ...] = ()
    user_boxes: tuple[Box, ...] = ()

    def __post_init__(self) -> None:
        if not str(self.study_key):
            raise ValueError("Unable to build a session record as the study key is empty")
        object.__setattr__(self, "study_key", str(self.study_key))
        object.__setattr__(self, "study_paths", tuple(str(p) for p in self.study_paths))
        object.__setattr__(self, "turns", tuple(self.turns))
        object.__setattr__(self, "user_boxes", tuple(self.user_boxes))

    def to_json(self) -> str:
        """The record as JSON text, with a format name and schema version."""
        data = {
            "format": _FORMAT,
            "schema_version": SCHEMA_VERSION,
            "study_key": self.study_key,
            "study_paths": list(self.study_paths),
            "series_description": self.series_description,
            "model": {
                "name": self.model.name,
                "family": self.model.family,
                "precision": self.model.precision,
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
                }
                for t in self.turns
            ],
            "user_boxes": [box_to_dict(b) for b in self.user_boxes],
        }
        return json.dumps(data, ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str) -> SessionRecord:
        """The record written by `to_json`.

        Raises:
            ValueError: the text is not JSON, not a BirdView session, of a newer schema, or
                has missing or malformed fields.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"Unable to read the session as it is not valid JSON ({exc.msg} at line "
                f"{exc.lineno})"
            ) from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError("Unable to read the session as it is not a BirdView session file")
        version = data.get("schema_version")
        if not isinstance(version, int) or version > SCHEMA_VERSION or version < 1:
            raise ValueError(
                f"Unable to read the session as its schema version {version!r} is not supported "
                f"(this BirdView reads versions 1..{SCHEMA_VERSION})"
            )
        try:
            model = data.get("model") or {}
            return cls(
                study_key=data["study_key"],
                study_paths=tuple(data.get("study_paths", ())),
                series_description=str(data.get("series_description", "")),
                model=ModelInfo(
                    str(model.get("name", "")),
                    str(model.get("family", "")),
                    str(model.get("precision", "")),
                ),
                created_at=str(data.get("created_at", "")),
                updated_at=str(data.get("updated_at", "")),
                turns=tuple(
                    RecordedTurn(
                        question=str(t["question"]),
                        answer=str(t["answer"]),
                        boxes=tuple(box_from_dict(b) for b in t.get("boxes", ())),
                        task=str(t.get("task", "")),
                        asked_at=str(t.get("asked_at", "")),
                        plane=str(t.get("plane", "")),
                        slice_index=int(t.get("slice_index", 0)),
                        model_question=str(t.get("model_question", "")),
                        region=box_from_dict(t["region"]) if t.get("region") else None,
                    )
                    for t in data.get("turns", ())
                ),
                user_boxes=tuple(box_from_dict(b) for b in data.get("user_boxes", ())),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(
                f"Unable to read the session as a field is missing or malformed ({exc!s})"
            ) from None


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
    """The box written by `box_to_dict`.

    Raises:
        KeyError, TypeError, ValueError: a field is missing or invalid.
    """
    return Box(
        data["plane"],
        data["slice_index"],
        data["x1_px"],
        data["y1_px"],
        data["x2_px"],
        data["y2_px"],
        label=data.get("label", ""),
        score=data.get("score"),
        flags=tuple(data.get("flags", ())),
    )


# -- files ----------------------------------------------------------------------------------


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file.

    Writes a temporary file in the same folder, flushes and fsyncs it, renames it over
    ``path`` and (on POSIX) fsyncs the folder so the rename itself is durable.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    folder = path.parent
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass  # some file systems refuse fsync on folders; the rename is done anyway
    finally:
        os.close(dir_fd)


def save_atomic(record: SessionRecord, path: str | os.PathLike) -> None:
    """Write the record to ``path`` atomically (see `write_atomic`)."""
    write_atomic(path, record.to_json())
    logger.debug("saved session %s (%d turns)", record.study_key, len(record.turns))


def load_record(path: str | os.PathLike) -> SessionRecord:
    """The record saved at ``path``.

    Raises:
        FileNotFoundError: there is no file.
        ValueError: the file is damaged or not a BirdView session.
    """
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(
            f"Unable to read the session {Path(path).name!r} as it is not UTF-8 text"
        ) from None
    try:
        return SessionRecord.from_json(text)
    except ValueError as exc:
        raise ValueError(f"{exc} in {Path(path).name!r}") from None


def session_path(study_key: str, base_dir: str | os.PathLike) -> Path:
    """Where the autosave of a study lives: ``base_dir/session-<key>.json``.

    A key that is not a short, file-name-safe token is hashed, so a file name never carries
    anything but the key's hash.
    """
    key = str(study_key)
    if not key:
        raise ValueError("Unable to name a session file as the study key is empty")
    name = key if _SAFE_KEY.match(key) and not key.startswith(".") else short_id(key)
    return Path(base_dir) / f"session-{name}.json"


def default_session_dir() -> Path:
    """Where autosaved sessions live: ``$BIRDVIEW_SESSION_DIR`` if set, else the platform's
    per-user application data folder (XDG state on Linux, like the logs)."""
    override = os.environ.get("BIRDVIEW_SESSION_DIR")
    if override:
        return Path(override)
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home())) / "BirdView" / "Sessions"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "BirdView" / "Sessions"
    state = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(state) / "birdview" / "sessions"
