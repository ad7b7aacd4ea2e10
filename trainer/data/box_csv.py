"""Boxes in a CSV table (``boxcsv`` source kind): one row per box, VinDr-CXR style.

VinDr-CXR's ``train.csv`` has the header ``image_id,class_name,class_id,rad_id,x_min,y_min,
x_max,y_max``: one row per box, a box's corners in pixels, and a row ``No finding`` with empty
corners for an image read without findings. Its names are found without help; other tables say
which column holds what with ``?columns=field:column,...``:

=============================  ================================================================
field                          column found without a mapping (first present, any case)
=============================  ================================================================
``image``                      image, image_id, file_name, filename, file, path
``label``                      label, class_name, class, category, finding
``x_min y_min x_max y_max``    the same names, or xmin.. / x1 y1 x2 y2
``x y w h`` (instead)          x, y, w (or width), h (or height)
``patient`` (optional)         patient, patient_id: images of one patient share a split
=============================  ================================================================

``?none=`` names the label of a row without findings (default ``No finding``, any case). An
image's value is a path under the images folder, with or without its suffix (VinDr's ids carry
none). One row per box, so an image has as many boxes of a label as it has rows of it.

Every row and image file name is checked before one image is written; the first problem is
refused with one line naming the file and the row (its line number). A table states no image
size, so a box outside its image is found when the image's turn comes; the build then leaves
nothing behind.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from pathlib import Path

from trainer.data.box_records import AnnotatedBox, BoxFile, BoxImage, find_image, image_folder
from trainer.data.sources import SourceSpec

__all__ = ["CORNERS", "FIELDS", "SIDES", "read_box_csv"]

CORNERS = ("x_min", "y_min", "x_max", "y_max")
SIDES = ("x", "y", "w", "h")
FIELDS = ("image", "label", *CORNERS, *SIDES, "patient")
_DEFAULT_COLUMNS = {
    "image": ("image", "image_id", "file_name", "filename", "file", "path"),
    "label": ("label", "class_name", "class", "category", "finding"),
    "x_min": ("x_min", "xmin", "x1"),
    "y_min": ("y_min", "ymin", "y1"),
    "x_max": ("x_max", "xmax", "x2"),
    "y_max": ("y_max", "ymax", "y2"),
    "x": ("x",),
    "y": ("y",),
    "w": ("w", "width"),
    "h": ("h", "height"),
    "patient": ("patient", "patient_id"),
}
_NO_FINDING = "No finding"


def read_box_csv(spec: SourceSpec) -> BoxFile:
    """The images and boxes of the CSV file ``spec.path``.

    Raises:
        ValueError: the table is malformed, a column cannot be found, or an image file is not
            there.
    """
    path = spec.path
    none = spec.options.get("none", _NO_FINDING).strip().lower()
    rows = _rows(path)
    header = rows[0][1] if rows else []
    columns = _columns(path, header, spec.options.get("columns", ""))
    by_image: dict[str, dict] = {}
    labels: dict[str, None] = {}
    for line, row in rows[1:]:
        values = dict(zip(header, row, strict=False))
        image = _cell(path, line, values, columns["image"])
        entry = by_image.setdefault(
            image, {"line": line, "boxes": [], "patient": _patient(values, columns)}
        )
        label = _cell(path, line, values, columns["label"])
        if label.strip().lower() == none:
            continue
        labels.setdefault(label.strip())
        entry["boxes"].append(_box(path, line, values, columns, label.strip()))
    if not by_image:
        raise ValueError(f"Unable to read '{path}' as a box table: it has no rows")
    first = next(iter(by_image.items()))
    folder = image_folder(spec, first[0], f"row {first[1]['line']}")
    images = tuple(_box_image(path, folder, key, entry) for key, entry in by_image.items())
    return BoxFile(tuple(labels), images, Counter())


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every non-empty row, the header first."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            return [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except UnicodeDecodeError as exc:
        raise ValueError(f"Unable to read '{path}' as it is not UTF-8 text ({exc})") from exc
    except csv.Error as exc:
        raise ValueError(f"Unable to read '{path}' as CSV: {exc}") from exc


def _columns(path: Path, header: list[str], mapping: str) -> dict[str, str]:
    """Field → column: the ``?columns=`` mapping first, then the usual names."""
    given = _mapping(path, mapping)
    missing = sorted(set(given.values()) - set(header))
    if missing:
        raise ValueError(
            f"Unable to read '{path}': ?columns= names {missing}, which the header {header} "
            "does not have"
        )
    lowered = {name.strip().lower(): name for name in header}
    columns = dict(given)
    for field, names in _DEFAULT_COLUMNS.items():
        if field not in columns:
            found = next((lowered[n] for n in names if n in lowered), None)
            if found is not None:
                columns[field] = found
    for field in ("image", "label"):
        if field not in columns:
            raise ValueError(_no_column(path, header, field))
    # A mapping of x/y/w/h means that form even where the header also has corner names.
    sides = any(f in given for f in SIDES) or not all(f in columns for f in CORNERS)
    form = SIDES if sides else CORNERS
    absent = [f for f in form if f not in columns]
    if absent:
        raise ValueError(_no_column(path, header, absent[0]))
    columns["form"] = "sides" if sides else "corners"
    return columns


def _mapping(path: Path, text: str) -> dict[str, str]:
    """``image:file,label:finding`` → {"image": "file", "label": "finding"}."""
    found: dict[str, str] = {}
    for part in (p for p in text.split(",") if p.strip()):
        field, sep, column = part.partition(":")
        if not sep or field.strip() not in FIELDS or not column.strip():
            raise ValueError(
                f"Unable to read '{path}': ?columns= part {part!r} is not field:column with a "
                f"field of {list(FIELDS)}"
            )
        found[field.strip()] = column.strip()
    return found


def _no_column(path: Path, header: list[str], field: str) -> str:
    return (
        f"Unable to read '{path}': no column for '{field}' in the header {header} (looked for "
        f"{', '.join(_DEFAULT_COLUMNS[field])}); map one with ?columns={field}:NAME"
    )


def _cell(path: Path, line: int, values: dict[str, str], column: str) -> str:
    value = (values.get(column) or "").strip()
    if not value:
        raise ValueError(f"Unable to read '{path}': row {line} has no {column!r}")
    return value


def _patient(values: dict[str, str], columns: dict[str, str]) -> str | None:
    column = columns.get("patient")
    if column is None:
        return None
    return (values.get(column) or "").strip() or None


def _box(
    path: Path, line: int, values: dict[str, str], columns: dict[str, str], label: str
) -> AnnotatedBox:
    form = SIDES if columns["form"] == "sides" else CORNERS
    numbers = [_number(path, line, values, columns[f], label) for f in form]
    if form is SIDES:
        x, y, w, h = numbers
        numbers = [x, y, x + w, y + h]
    x1, y1, x2, y2 = numbers
    if not (x2 > x1 and y2 > y1):
        raise ValueError(
            f"Unable to read '{path}': row {line} ({label}) has the box ({x1:g},{y1:g}),"
            f"({x2:g},{y2:g}), which has no area"
        )
    return AnnotatedBox(label, x1, y1, x2, y2, f"row {line}")


def _number(path: Path, line: int, values: dict[str, str], column: str, label: str) -> float:
    text = (values.get(column) or "").strip()
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(
            f"Unable to read '{path}': row {line} ({label}) has {column} {text!r}, not a number"
        )
    return value


def _box_image(path: Path, folder: Path, key: str, entry: dict) -> BoxImage:
    file = find_image(folder, key)
    if file is None:
        raise ValueError(
            f"Unable to read '{path}': row {entry['line']} names the image '{key}', which is "
            f"not in '{folder}'"
        )
    return BoxImage(
        file=file,
        key=key if file.name == Path(key).name else f"{key}{file.suffix}",
        record=f"row {entry['line']}",
        boxes=tuple(entry["boxes"]),
        patient=entry["patient"],
    )
