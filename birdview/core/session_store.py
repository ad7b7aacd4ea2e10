"""Saving a study session (the questions, answers and boxes) to disk, and reading it back.

A `SessionRecord` belongs to exactly one study: it carries that study's identity
(`Volume.identity`, a hash, never patient data), its file is named after that identity, and
`save_session` / `load_session` refuse a record or a file of another study. This is what keeps
one patient's conversation out of another patient's session, chat and exports.

Writes are atomic (`birdview.core.files.write_atomic`): a temporary file in the same folder,
flushed to disk and renamed over the old file, so a crash mid-save leaves the previous version.
Reading never trusts the file: size, nesting, types and numbers are checked, and every problem
comes out as one `ValueError` that names the file.

The records and their JSON are in `birdview.core.session_format`; their names are imported
from here too.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from birdview.core.files import write_atomic
from birdview.core.session_format import (
    SCHEMA_VERSION,
    ModelInfo,
    RecordedTurn,
    SessionRecord,
    StudyRef,
    _check_identity,
    box_from_dict,
    box_to_dict,
)
from birdview.core.volume import Volume

__all__ = [
    "SCHEMA_VERSION",
    "ModelInfo",
    "RecordedTurn",
    "SessionRecord",
    "StudyRef",
    "box_from_dict",
    "box_to_dict",
    "default_session_dir",
    "ensure_same_study",
    "load_record",
    "load_session",
    "save_atomic",
    "save_session",
    "session_path",
]

logger = logging.getLogger(__name__)

# Far above any real session (3000 turns are ~1 MB); a bigger file is not read into memory.
MAX_SESSION_BYTES = 64 * 1024**2


# -- files ----------------------------------------------------------------------------------


def save_atomic(record: SessionRecord, path: str | os.PathLike) -> None:
    """Write the record to ``path`` atomically (see `write_atomic`)."""
    write_atomic(path, record.to_json())
    logger.debug("saved session %s (%d turns)", _short(record.study_identity), len(record.turns))


def save_session(record: SessionRecord, base_dir: str | os.PathLike) -> Path:
    """Write the record to its study's file in ``base_dir`` (named by `session_path`); returns
    the path.

    Raises:
        ValueError: the file there belongs to another study (it is left as it is).
        OSError: the file could not be written.
    """
    path = session_path(record.study_identity, base_dir)
    try:
        saved = load_record(path)
    except (OSError, ValueError):
        saved = None  # no file, or a damaged one: it is replaced
    if saved is not None and saved.study_identity != record.study_identity:
        raise ValueError(f"Unable to save the session as {path.name!r} belongs to another study")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_atomic(record, path)
    return path


def load_record(path: str | os.PathLike) -> SessionRecord:
    """The record saved at ``path``.

    Raises:
        FileNotFoundError: there is no file.
        ValueError: the file is damaged, too large, not a BirdView session or of an older
            schema.
    """
    name = Path(path).name
    with open(path, "rb") as file:
        raw = file.read(MAX_SESSION_BYTES + 1)
    if len(raw) > MAX_SESSION_BYTES:
        raise ValueError(
            f"Unable to read the session {name!r} as it is larger than "
            f"{MAX_SESSION_BYTES // 1024**2} MB"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"Unable to read the session {name!r} as it is not UTF-8 text") from None
    try:
        return SessionRecord.from_json(text)
    except ValueError as exc:
        raise ValueError(f"{exc} in {name!r}") from None


def load_session(identity: str, base_dir: str | os.PathLike) -> SessionRecord | None:
    """The saved session of the study ``identity`` (`Volume.identity`), or None if it has none.

    Raises:
        ValueError: the file is damaged, or it belongs to another study.
        OSError: the file could not be read.
    """
    path = session_path(identity, base_dir)
    try:
        record = load_record(path)
    except FileNotFoundError:
        return None
    if record.study_identity != identity:
        raise ValueError(
            f"Unable to restore the session {path.name!r} as it belongs to another study"
        )
    return record


def ensure_same_study(record: SessionRecord, volume: Volume) -> None:
    """Refuse to combine a conversation with a study it does not belong to.

    Raises:
        ValueError: ``record`` is about another study than ``volume``.
    """
    if record.study_identity != volume.identity:
        raise ValueError(
            f"Unable to use the session of study {_short(record.study_identity)} with study "
            f"{_short(volume.identity)}: they are different studies"
        )


def session_path(identity: str, base_dir: str | os.PathLike) -> Path:
    """Where the autosave of a study lives: ``base_dir/session-<16 hex digits>.json``, from
    the study's identity (so a file name carries no patient data)."""
    _check_identity(identity)
    return Path(base_dir) / f"session-{_short(identity, 16)}.json"


def _short(identity: str, digits: int = 8) -> str:
    """The first hex digits of an identity's hash, for file names and logs."""
    return identity.rpartition(":")[2][:digits]


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
