"""Which segmentation file was open over a study, and how it was shown, remembered beside the
study's session.

The same rules as `session_store`: the file (``labels-<16 hex>.json``) is named after the
study's identity and carries it; one that names another study is refused; writes are atomic.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from birdview.core.files import write_atomic
from birdview.core.study_files import study_file_path

__all__ = [
    "LabelsChoice",
    "forget_labels",
    "labels_choice_path",
    "load_labels_choice",
    "save_labels_choice",
]

_FORMAT = "birdview-labels"


@dataclass(frozen=True)
class LabelsChoice:
    """The segmentation file open over a study and how it was drawn (`LabelOverlay`'s
    fields)."""

    path: str
    opacity: float = 0.45
    outline: bool = False
    visible: bool = True
    hidden: frozenset[int] = frozenset()


def labels_choice_path(identity: str, base_dir: str | os.PathLike) -> Path:
    """``base_dir/labels-<16 hex>.json`` beside the study's ``session-<16 hex>.json``."""
    return study_file_path(identity, base_dir, "labels")


def save_labels_choice(
    identity: str, choice: LabelsChoice | str, base_dir: str | os.PathLike
) -> Path:
    """Remember the segmentation open over the study ``identity`` (a path alone: drawn the
    default way)."""
    if isinstance(choice, str):
        choice = LabelsChoice(choice)
    path = labels_choice_path(identity, base_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "format": _FORMAT,
        "study_identity": identity,
        "path": os.path.abspath(choice.path),
        "opacity": choice.opacity,
        "outline": choice.outline,
        "visible": choice.visible,
        "hidden": sorted(choice.hidden),
    }
    write_atomic(path, json.dumps(record, indent=1))
    return path


def load_labels_choice(identity: str, base_dir: str | os.PathLike) -> LabelsChoice | None:
    """The segmentation last open over the study ``identity``, or None.

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
    return _choice(data, path.name)


def _choice(data: dict, name: str) -> LabelsChoice | None:
    label_path, opacity = data.get("path"), data.get("opacity", 0.45)
    hidden = data.get("hidden", [])
    if not isinstance(label_path, str) or not label_path:
        return None
    valid = (
        isinstance(opacity, (int, float))
        and not isinstance(opacity, bool)
        and math.isfinite(opacity)
        and 0 <= opacity <= 1
        and isinstance(data.get("outline", False), bool)
        and isinstance(data.get("visible", True), bool)
        and isinstance(hidden, list)
        and all(isinstance(v, int) and not isinstance(v, bool) for v in hidden)
    )
    if not valid:
        raise ValueError(f"Unable to read {name!r} as its display settings are invalid")
    return LabelsChoice(
        label_path,
        float(opacity),
        data.get("outline", False),
        data.get("visible", True),
        frozenset(hidden),
    )


def forget_labels(identity: str, base_dir: str | os.PathLike) -> None:
    """The study no longer has a segmentation open."""
    labels_choice_path(identity, base_dir).unlink(missing_ok=True)
