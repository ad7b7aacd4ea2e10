"""Class names (and colours) of a label map, from the files that usually sit beside one:

- ``classes.json``: ``{"1": "liver", ...}``, ``{"liver": 1, ...}``, ``{"labels": {...}}``, or
  sections with ``"labels"`` and ``"applies_to"`` (the file names they name), as the bundled
  TotalSegmentator sample has;
- nnU-Net ``dataset.json``: ``"labels"`` as ``{"background": 0, "liver": 1}`` (v2) or
  ``{"0": "background", "1": "liver"}`` (v1), in the label map's folder or the one above
  (``labelsTr/`` sits in the dataset folder);
- an ITK-SNAP label description file (``*.label`` or ``*label*.txt``): lines
  ``IDX R G B A VIS MSH "LABEL"``.

A file that names nothing for this label map is passed over; a file that is there but broken
is reported, naming the file.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
from dataclasses import dataclass, field

__all__ = ["LabelNames", "find_names", "read_itksnap", "read_json_names"]

logger = logging.getLogger(__name__)

_JSON_NAMES = ("classes.json", "dataset.json")
_BACKGROUND = {"background", "bg", "clear label"}


@dataclass(frozen=True)
class LabelNames:
    """Names (and colours, where the file has them) by label value, and the file they came
    from ("" when none was found)."""

    names: dict[int, str] = field(default_factory=dict)
    colours: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    path: str = ""


def find_names(label_path: str) -> LabelNames:
    """The names for the label map at ``label_path`` from the first file beside it (or, for
    dataset.json, one folder up) that has names for it; empty when there is none (with the
    path of a names file that was there but named nothing for it, if any).

    Raises:
        ValueError: a names file is there but cannot be read, naming it and why.
    """
    folder = os.path.dirname(os.path.abspath(label_path))
    file_name = os.path.basename(label_path)
    candidates = [os.path.join(folder, n) for n in _JSON_NAMES]
    candidates += _itksnap_files(folder)
    candidates.append(os.path.join(os.path.dirname(folder), "dataset.json"))
    passed_over = ""
    for candidate in candidates:
        if not os.path.isfile(candidate):
            continue
        if candidate.endswith(".json"):
            names = read_json_names(candidate, file_name)
        elif candidate.lower().endswith(".txt"):
            names = _maybe_itksnap(candidate)
        else:
            names = read_itksnap(candidate)
        if names.names:
            return names
        passed_over = passed_over or names.path
    return LabelNames(path=passed_over)


def _itksnap_files(folder: str) -> list[str]:
    try:
        entries = sorted(os.listdir(folder))
    except OSError:
        return []
    return [
        os.path.join(folder, n)
        for n in entries
        if n.lower().endswith(".label") or (n.lower().endswith(".txt") and "label" in n.lower())
    ]


# -- JSON -----------------------------------------------------------------------------------


def read_json_names(path: str, label_file: str = "") -> LabelNames:
    """Names from a classes.json or nnU-Net dataset.json (see the module docstring).

    Raises:
        ValueError: the file is not JSON or its labels are not value → name pairs.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"Unable to read class names from {path!r} as {exc}") from exc
    table = _labels_table(data, label_file)
    if table is None:
        return LabelNames(path=path)
    return LabelNames(_value_names(table, path), {}, path)


def _labels_table(data: object, label_file: str) -> dict | None:
    """The value/name table that applies to ``label_file``, or None."""
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("labels"), dict):
        return data["labels"]
    sections = [
        v for v in data.values() if isinstance(v, dict) and isinstance(v.get("labels"), dict)
    ]
    applying = [s for s in sections if label_file in (s.get("applies_to") or ())]
    if applying:
        return applying[0]["labels"]
    if len(sections) == 1 and not sections[0].get("applies_to"):
        return sections[0]["labels"]
    if sections:
        return None  # sections for other files only
    if data and all(str(k).isdigit() for k in data):
        return data
    return None


def _value_names(table: dict, path: str) -> dict[int, str]:
    names: dict[int, str] = {}
    for key, item in table.items():
        if str(key).strip().isdigit() and isinstance(item, str):  # "1": "liver"
            value, name = int(key), item
        elif isinstance(item, int) and not isinstance(item, bool):  # "liver": 1
            value, name = item, str(key)
        elif isinstance(item, list):  # nnU-Net v2 regions: no single value to name
            continue
        else:
            raise ValueError(
                f"Unable to read class names from {path!r} as the label entry "
                f"{key!r}: {item!r} is not a value and a name"
            )
        if value > 0 and name.strip().lower() not in _BACKGROUND:
            names[value] = name.strip()
    return names


# -- ITK-SNAP -------------------------------------------------------------------------------


def read_itksnap(path: str) -> LabelNames:
    """Names and colours from an ITK-SNAP label description file.

    Raises:
        ValueError: a line is not ``IDX R G B A VIS MSH "LABEL"``, naming the line.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise ValueError(f"Unable to read class names from {path!r} as {exc}") from exc
    names: dict[int, str] = {}
    colours: dict[int, tuple[int, int, int]] = {}
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = _split(text)
        if len(parts) < 8 or not all(re.fullmatch(r"-?\d+", p) for p in parts[:4]):
            raise ValueError(
                f"Unable to read class names from {path!r} as line {number} is not "
                f"'IDX R G B A VIS MSH \"LABEL\"': {text[:60]!r}"
            )
        value = int(parts[0])
        if value > 0:
            names[value] = parts[7]
            colours[value] = (int(parts[1]), int(parts[2]), int(parts[3]))
    return LabelNames(names, colours, path)


def _maybe_itksnap(path: str) -> LabelNames:
    """A ``*label*.txt`` may be any notes file: one that is not in ITK-SNAP's format names
    nothing rather than blocking the label map it sits beside."""
    try:
        return read_itksnap(path)
    except ValueError:
        logger.info("%s is not an ITK-SNAP label file; passed over", os.path.basename(path))
        return LabelNames()  # not a names file at all: not worth mentioning


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()
