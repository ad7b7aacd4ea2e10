"""The header of one file as flat rows, for the tag browser."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from birdview.core.errors import VolumeReadError
from birdview.core.io._dicom_file import header_reason, is_passthrough, read_header
from birdview.core.volume import SliceSource

_MAX_VALUE_CHARS = 200
_PER_FRAME_TAG = 0x52009230  # (5200,9230) Per-frame Functional Groups Sequence
_BINARY_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN"}


@dataclass(frozen=True)
class TagRow:
    """One element of a header, flattened: ``depth`` is its nesting inside sequences."""

    tag: str  # "(0010,0010)"
    name: str
    vr: str
    value: str
    depth: int


def dicom_tag_rows(source: SliceSource) -> list[TagRow]:
    """All elements of ``source``'s file except pixel data, file meta first.

    For a multi-frame file with ``source.frame`` set, only that frame's item of the per-frame
    functional groups is listed (the shared groups are listed in full).

    Raises:
        VolumeReadError: the file cannot be read.
    """
    ds, _ = read_header(source.path)
    rows: list[TagRow] = []
    try:
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            _add_rows(rows, meta, 0, source.frame)
        _add_rows(rows, ds, 0, source.frame)
    except BaseException as exc:  # noqa: BLE001 - pydicom converts lazily; bad values surface here
        if is_passthrough(exc):
            raise
        raise VolumeReadError(source.path, header_reason(exc)) from exc
    return rows


def _add_rows(rows: list[TagRow], ds: Dataset, depth: int, frame: int | None) -> None:
    for tag in list(ds.keys()):
        try:
            element = ds[tag]
        except Exception:
            rows.append(TagRow(_tag_text(tag), "(unreadable)", "", "<unreadable value>", depth))
            continue
        rows.append(
            TagRow(_tag_text(tag), element.name, str(element.VR), _value_text(element), depth)
        )
        if element.VR == "SQ" and isinstance(element.value, Sequence):
            _add_items(rows, element, depth, frame)


def _add_items(rows: list[TagRow], element: object, depth: int, frame: int | None) -> None:
    items = list(element.value)  # type: ignore[attr-defined]
    numbered = list(enumerate(items))
    if element.tag == _PER_FRAME_TAG:  # type: ignore[attr-defined]
        # Thousands of frames: show only the frame being looked at.
        numbered = [(frame, items[frame])] if frame is not None and 0 <= frame < len(items) else []
    for number, item in numbered:
        rows.append(TagRow("(FFFE,E000)", f"Item {number + 1}", "", "", depth + 1))
        _add_rows(rows, item, depth + 2, frame)


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _value_text(element: object) -> str:
    value = element.value  # type: ignore[attr-defined]
    vr = str(element.VR)  # type: ignore[attr-defined]
    if vr == "SQ":
        return f"<{len(value)} items>"
    if isinstance(value, (bytes, bytearray, memoryview)) or (
        vr in _BINARY_VRS and value is not None
    ):
        size = len(value) if hasattr(value, "__len__") else 0
        return f"<{size} bytes>"
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        text = "\\".join(str(item) for item in value)
    else:
        text = str(value)
    text = " ".join(text.split()) if "\n" in text or "\r" in text else text
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 1] + "…"
