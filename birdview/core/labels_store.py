"""Which segmentation file was open over a study, remembered beside its session.

The same rules as `session_store`: the file (``labels-<16 hex>.json``) is named after the
study's identity and carries it; one that names another study is refused; writes are atomic.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from birdview.core.files import write_atomic
from birdview.core.session_store import session_path

__all__ = ["forget_labels", "labels_choice_path", "load_labels_choice", "save_labels_choice"]

_FORMAT = "birdview-labels"


def labels_choice_path(identity: str, base_dir: str | os.PathLike) -> Path:
    """``base_dir/labels-<16 hex>.json`` beside the study's ``session-<16 hex>.json``."""
    session = session_path(identity, base_dir)
    return session.with_name(session.name.replace("session-", "labels-", 1))


def save_labels_choice(identity: str, label_path: str, base_dir: str | os.PathLike) -> Path:
    """Remember that ``label_path`` was open over the study ``identity``."""
    path = labels_choice_path(identity, base_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"format": _FORMAT, "study_identity": identity, "path": os.path.abspath(label_path)}
    write_atomic(path, json.dumps(record, indent=1))
    return path


def load_labels_choice(identity: str, base_dir: str | os.PathLike) -> str | None:
    """The segmentation file last open over the study ``identity``, or None.

    Raises:
        ValueError: the file is damaged or belongs to another study.
    """
    path = labels_choice_path(identity, base_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"Unable to read {path.name!r} as {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise ValueError(f"Unable to read {path.name!r} as it is not a BirdView labels record")
    if data.get("study_identity") != identity:
        raise ValueError(f"Unable to use {path.name!r} as it belongs to another study")
    label_path = data.get("path")
    return label_path if isinstance(label_path, str) and label_path else None


def forget_labels(identity: str, base_dir: str | os.PathLike) -> None:
    """The study no longer has a segmentation open."""
    labels_choice_path(identity, base_dir).unlink(missing_ok=True)
