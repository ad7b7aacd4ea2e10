"""A checkpoint's files: whether each safetensors file is whole. No torch here."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["safetensors_problem", "weight_files"]

# safetensors itself refuses headers above this size; checking it here keeps a damaged length
# field from making us read gigabytes as "header".
_MAX_HEADER = 100_000_000


def weight_files(folder: Path) -> list[Path]:
    """The ``*.safetensors`` files in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(".safetensors"))


def safetensors_problem(path: Path) -> str | None:
    """Why ``path`` is not a whole safetensors file, or None when it is. Reads only the
    header: a file cut short (an interrupted copy or download) is the usual damage, and
    safetensors' own error ("incomplete metadata, file not fully covered") names neither the
    file nor the cause.

    Raises:
        OSError: the file could not be read.
    """
    size = path.stat().st_size
    with path.open("rb") as file:
        head = file.read(8)
        length = int.from_bytes(head, "little")
        if len(head) < 8 or length > min(size - 8, _MAX_HEADER):
            return f"{path.name} is cut short or not a safetensors file ({size:,} bytes)"
        header_bytes = file.read(length)
    try:
        header = json.loads(header_bytes)
        ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
        expected = 8 + length + max(ends, default=0)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return f"{path.name} has an unreadable header"
    if size < expected:
        return f"{path.name} is cut short ({size:,} of its {expected:,} bytes)"
    if size > expected:
        return f"{path.name} has {size - expected:,} bytes more than its header describes"
    return None
