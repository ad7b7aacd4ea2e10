"""Reading header values tolerantly, and fast.

A malformed value reads as absent (None) rather than raising: one odd element should not cost
the whole file. Numbers, UIDs and code strings are read straight from the raw bytes: pydicom's
conversion validates and wraps every value, and took most of a header scan's time.
"""

from __future__ import annotations

import math
import struct
from functools import cache
from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

_TEXT_VRS = {"DS", "IS", "UI", "CS", "DA", "TM", "SH", "LO", "AS"}


def value(ds: Dataset, keyword: str) -> Any:
    """The converted value of ``keyword``, or None when absent, empty or malformed."""
    try:
        found = ds.get(keyword)
    except Exception:
        return None
    return None if found == "" else found


def text(ds: Dataset, keyword: str) -> str:
    found = value(ds, keyword)
    return "" if found is None else str(found).strip()


def raw(ds: Dataset, keyword: str) -> Any:
    """An ASCII element's value as a str (or a list of str when multi-valued), unconverted.

    Other elements (sequences, binary VRs, values pydicom has already converted) fall back
    to `value`.
    """
    element = _raw_element(ds, keyword)
    if element is None:
        return None
    data = element.value
    if not isinstance(data, (bytes, bytearray)) or (element.VR and element.VR not in _TEXT_VRS):
        return value(ds, keyword)
    parts = [part.strip(" \x00") for part in data.decode("latin-1").split("\\")]
    if len(parts) == 1:
        return parts[0] or None
    return parts


def _raw_element(ds: Dataset, keyword: str) -> Any:
    """The element as stored (undecoded), or None when absent or unreadable."""
    try:
        return ds.get_item(tag_of(keyword))
    except Exception:  # a damaged header: the caller treats the value as missing
        return None


def raw_text(ds: Dataset, keyword: str) -> str:
    found = raw(ds, keyword)
    if isinstance(found, list):
        return "\\".join(found)
    return "" if found is None else str(found).strip()


def uint(ds: Dataset, keyword: str) -> int | None:
    """An unsigned short (Rows, Columns, Bits Stored...), read from its two raw bytes."""
    element = _raw_element(ds, keyword)
    if element is None:
        return None
    data = element.value
    if isinstance(data, (bytes, bytearray)) and len(data) == 2:
        return struct.unpack("<H" if element.is_little_endian else ">H", data)[0]
    return as_int(value(ds, keyword))


@cache
def tag_of(keyword: str) -> int:
    return int(tag_for_keyword(keyword))  # type: ignore[arg-type]


def as_int(found: Any) -> int | None:
    try:
        return int(found)
    except (TypeError, ValueError, OverflowError):
        number = as_float(found)
        return int(number) if number is not None and number.is_integer() else None


def as_float(found: Any) -> float | None:
    try:
        number = float(found)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def first(found: Any) -> float | None:
    """The first of a possibly multi-valued number (Window Center often holds two)."""
    if found is not None and not isinstance(found, (str, bytes)) and hasattr(found, "__len__"):
        found = found[0] if len(found) else None
    return as_float(found)


def floats(found: Any, count: int) -> tuple[float, ...] | None:
    if found is None or isinstance(found, (str, bytes)) or not hasattr(found, "__len__"):
        return None
    if len(found) != count:
        return None
    numbers = tuple(as_float(item) for item in found)
    return None if any(n is None for n in numbers) else numbers  # type: ignore[return-value]


def vector(found: Any) -> tuple[float, float, float] | None:
    numbers = floats(found, 3)
    return None if numbers is None else (numbers[0], numbers[1], numbers[2])


def positive(found: Any) -> float | None:
    number = as_float(found)
    return number if number is not None and number > 0 else None
