"""Key images: the slices of a study the user marked (K) as the ones that matter.

`KeyImages` is Qt-free and observable (psygnal): the views draw a badge on a key slice and the
exports write the set (`birdview.core.key_images_export`). It belongs to one study (`study`, a
`Volume.identity`); marking a slice again unmarks it.

The set is saved beside the study's session file as ``key-images-<16 hex>.json``, with the same
rules as `birdview.core.measure_store`: the file carries the study's identity and reading
refuses a file of another study; writes are atomic; a damaged file is one `ValueError` naming it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from psygnal import Signal

from birdview.core.geometry import Plane
from birdview.core.session_store import StudyRef
from birdview.core.study_files import load_study_file, save_study_json, study_file_path

__all__ = ["KeyImage", "KeyImages", "key_images_path", "load_key_images", "save_key_images"]

_FORMAT = "birdview-key-images"
SCHEMA_VERSION = 1
_MAX_BYTES = 4 * 1024**2


@dataclass(frozen=True, order=True)
class KeyImage:
    """Slice ``slice_index`` of ``plane``."""

    plane: Plane
    slice_index: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "plane", Plane(self.plane))
        if isinstance(self.slice_index, bool) or not isinstance(self.slice_index, int):
            raise TypeError(f"Unable to mark slice {self.slice_index!r} as it is not a number")
        if self.slice_index < 0:
            raise ValueError(f"Unable to mark the negative slice {self.slice_index}")

    def name(self) -> str:
        """ "axial 8": the plane and the slice index counted from 1 (not in reading order;
        `key_images_export.shown_number` counts as the views do)."""
        return f"{self.plane.value} {self.slice_index + 1}"


class KeyImages:
    """The key images of one study, in plane and slice order.

    Signals:
        changed(): the set changed.
    """

    changed = Signal()

    def __init__(self) -> None:
        self.study: str | None = None
        self._items: tuple[KeyImage, ...] = ()

    @property
    def items(self) -> tuple[KeyImage, ...]:
        return self._items

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def reset(self, study: str | None, items: Iterable[KeyImage] = ()) -> None:
        """Hold ``study``'s key images (a study was opened or closed)."""
        self.study = study
        self._items = tuple(sorted(set(items)))
        self.changed.emit()

    def toggle(self, plane: Plane, slice_index: int) -> bool:
        """Mark the slice, or unmark it when it is marked; returns whether it is marked now.

        Raises:
            ValueError: no study is open.
        """
        if self.study is None:
            raise ValueError("Unable to mark a key image as no study is open")
        key = KeyImage(plane, int(slice_index))
        marked = key not in self._items
        items = set(self._items)
        items.symmetric_difference_update({key})
        self._items = tuple(sorted(items))
        self.changed.emit()
        return marked


# -- the study's file -----------------------------------------------------------------------


def key_images_path(identity: str, base_dir: str | os.PathLike) -> Path:
    """``base_dir/key-images-<16 hex>.json``, beside the study's session file."""
    return study_file_path(identity, base_dir, "key-images")


def save_key_images(identity: str, items: Iterable[KeyImage], base_dir: str | os.PathLike) -> Path:
    """Write a study's key images (none: the file goes); returns the path.

    Raises:
        ValueError: the file there belongs to another study (it is left as it is).
        OSError: the file could not be written.
    """
    items = sorted(set(items))
    data = {
        "format": _FORMAT,
        "schema_version": SCHEMA_VERSION,
        "study_identity": identity,
        "key_images": [{"plane": k.plane.value, "slice_index": k.slice_index} for k in items],
    }
    path = key_images_path(identity, base_dir)
    return save_study_json(path, identity, "key images", data if items else None, _identity)


def load_key_images(identity: str, base_dir: str | os.PathLike) -> list[KeyImage]:
    """The saved key images of study ``identity`` ([] when it has none).

    Raises:
        ValueError: the file is damaged, or it belongs to another study.
        OSError: the file could not be read.
    """
    path = key_images_path(identity, base_dir)
    return load_study_file(path, identity, "key images", _read) or []


def _identity(path: Path) -> str:
    return _read(path)[0]


def _read(path: Path) -> tuple[str, list[KeyImage]]:
    with open(path, "rb") as file:
        raw = file.read(_MAX_BYTES + 1)
    name = path.name
    try:
        if len(raw) > _MAX_BYTES:
            raise ValueError("the file is too large")
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError("it is not a BirdView key images file")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"its schema version {data.get('schema_version')!r} is unknown")
        identity = data.get("study_identity")
        StudyRef(identity)  # checks the identity's form
        entries = data.get("key_images")
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ValueError("'key_images' is not a list of objects")
        return identity, [KeyImage(e.get("plane"), e.get("slice_index")) for e in entries]
    except (UnicodeDecodeError, RecursionError, TypeError, ValueError) as exc:
        problem = str(exc) if not isinstance(exc, json.JSONDecodeError) else "it is not JSON"
        raise ValueError(f"Unable to read the key images {name!r} as {_plain(problem)}") from None


def _plain(problem: str) -> str:
    return re.sub(r"^Unable to \w+ ", "", problem)
