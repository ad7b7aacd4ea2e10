"""A study's masks (`MaskSet`) saved beside its session and read back.

The same rules as `session_store` and `labels_store`: the file (``masks-<16 hex>.npz`` beside
``session-<16 hex>.json``) is named after the study's identity and carries it with the grid
shape; a file of another study, or of another grid, is refused; writes are atomic. Each mask is
stored as bits (``np.packbits``) in a compressed npz with a JSON header: a 20 × 512 × 512 mask is
640 KiB of bits before compression, usually a few KiB after. No pickle is read back.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from birdview.core.files import write_atomic
from birdview.core.mask_set import MaskEntry, MaskSet
from birdview.core.study_files import study_file_path

__all__ = ["forget_masks", "load_masks", "masks_path", "save_masks"]

_FORMAT = "birdview-masks"
SCHEMA_VERSION = 1


def masks_path(identity: str, base_dir: str | os.PathLike) -> Path:
    """``base_dir/masks-<16 hex>.npz`` beside the study's ``session-<16 hex>.json``."""
    return study_file_path(identity, base_dir, "masks", ".npz")


def save_masks(masks: MaskSet, base_dir: str | os.PathLike) -> Path | None:
    """Write the set's masks (none: the file is removed); returns the path written or None.

    Raises:
        ValueError: the set holds no study.
    """
    if masks.study is None or masks.shape is None:
        raise ValueError("Unable to save masks as no study is open")
    path = masks_path(masks.study, base_dir)
    if not len(masks):
        path.unlink(missing_ok=True)
        return None
    header = {
        "format": _FORMAT,
        "version": SCHEMA_VERSION,
        "study_identity": masks.study,
        "shape": list(masks.shape),
        "masks": [
            {
                "id": e.id,
                "name": e.name,
                "colour": list(e.colour),
                "source": e.source,
                "visible": e.visible,
            }
            for e in masks
        ],
    }
    arrays = {f"mask_{n}": np.packbits(e.data != 0, axis=None) for n, e in enumerate(masks)}
    arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buffer.getvalue())
    return path


def load_masks(identity: str, base_dir: str | os.PathLike, masks: MaskSet) -> bool:
    """Put the masks saved for study ``identity`` into ``masks`` (reset to that study and
    ``masks.shape``); False when none were saved.

    Raises:
        ValueError: the file is damaged, or belongs to another study or another grid.
    """
    path = masks_path(identity, base_dir)
    if not path.exists():
        return False
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(bytes(data["header"]).decode("utf-8"))
            bits = {name: np.asarray(data[name]) for name in data.files if name != "header"}
    except (OSError, ValueError, KeyError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
        raise ValueError(f"Unable to read {path.name!r} as {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise ValueError(f"Unable to read {path.name!r} as it is not a BirdView masks file")
    if header.get("study_identity") != identity:
        raise ValueError(f"Unable to use {path.name!r} as it belongs to another study")
    if tuple(header.get("shape") or ()) != tuple(masks.shape or ()):
        raise ValueError(
            f"Unable to use {path.name!r} as its masks have shape {header.get('shape')!r} "
            f"and the study {masks.shape!r}"
        )
    entries = [
        _entry(item, bits.get(f"mask_{n}"), masks.shape, path.name)
        for n, item in enumerate(header.get("masks") or [])
    ]
    masks.reset(identity, masks.shape, entries)
    return True


def _entry(item: object, bits: np.ndarray | None, shape: tuple, name: str) -> MaskEntry:
    size = int(np.prod(shape))
    valid = (
        isinstance(item, dict)
        and isinstance(item.get("id"), int)
        and isinstance(item.get("name"), str)
        and isinstance(item.get("source"), str)
        and isinstance(item.get("colour"), list)
        and len(item["colour"]) == 3
        and bits is not None
        and bits.dtype == np.uint8
        and bits.size == (size + 7) // 8
    )
    if not valid:
        raise ValueError(f"Unable to read {name!r} as a mask in it is damaged")
    data = np.unpackbits(bits, count=size).reshape(shape)
    return MaskEntry(
        item["id"],
        item["name"],
        tuple(int(c) & 255 for c in item["colour"]),
        item["source"],
        data,
        visible=bool(item.get("visible", True)),
    )


def forget_masks(identity: str, base_dir: str | os.PathLike) -> None:
    masks_path(identity, base_dir).unlink(missing_ok=True)
