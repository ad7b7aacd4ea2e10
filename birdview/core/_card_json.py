"""Reading birdview.json strictly: a bounded, regular, UTF-8 file holding one JSON object;
NaN and Infinity kept as markers so that the card refuses them by name. Used by
`birdview.core.model_card`."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["NonFinite", "kind", "read_object", "show"]


class NonFinite:
    """NaN or ±Infinity as read from a file, kept only to be refused by name."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __float__(self) -> float:
        return float(self.name)


def kind(value: object) -> str:
    """A value's JSON kind for messages; NaN and Infinity by name."""
    if isinstance(value, NonFinite):
        return value.name
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {show(value)}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…'"


def read_object(path: Path, limit_bytes: int) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when there is no file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f"Unable to read '{path}' as {exc.strerror or exc}") from exc
    if not stat.S_ISREG(mode):
        raise ValueError(f"Unable to read '{path}' as it is not a regular file")
    try:
        with open(path, "rb") as file:
            raw = file.read(limit_bytes + 1)
    except OSError as exc:
        raise ValueError(f"Unable to read '{path}' as {exc.strerror or exc}") from exc
    if len(raw) > limit_bytes:
        raise ValueError(
            f"Unable to read '{path}' as it is larger than {limit_bytes // 1024**2} MiB"
        )
    data = _parse(raw, path)
    if not isinstance(data, dict):
        raise ValueError(f"Unable to read '{path}' as it holds {kind(data)}, not an object")
    return data


def _parse(raw: bytes, path: Path) -> Any:
    try:
        return json.loads(raw.decode("utf-8-sig"), parse_constant=NonFinite)
    except UnicodeDecodeError as exc:
        raise ValueError(f"Unable to read '{path}' as it is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"Unable to read '{path}' as it is not valid JSON ({exc.msg} at line {exc.lineno})"
        ) from exc
    except RecursionError as exc:
        raise ValueError(f"Unable to read '{path}' as it is nested too deeply") from exc
    except ValueError as exc:  # an integer longer than Python converts
        raise ValueError(f"Unable to read '{path}' as {exc}") from exc
