"""Saving a study's measurements beside its session, reading them back, and the JSON export.

The same rules as `session_store`: the file carries the study's identity (`Volume.identity`,
a hash, never patient data) and is named after it (``measurements-<16 hex>.json`` beside
``session-<16 hex>.json``); reading refuses a file of another study; writes are atomic; a
damaged file comes out as one `ValueError` naming the file.

`measurements_json` is what exports write: each measurement's points (pixels and LPS mm) and
values with their units, and the calibration they were measured with. An ROI measured on a
thick slab (the views showed a MIP, MinIP or average) has the statistics of the projection
shown, as the viewer showed them, with the slab named and the centre slice's beside them.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from birdview.core import geometry
from birdview.core.measure import Measured, Measurement, measure
from birdview.core.measure_calibration import calibration_of
from birdview.core.session_store import StudyRef
from birdview.core.slab import Slab, slab_record
from birdview.core.study_files import load_study_file, save_study_json, study_file_path
from birdview.core.volume import Volume

__all__ = [
    "load_measurements",
    "points_lps_mm",
    "measurement_from_dict",
    "measurement_to_dict",
    "measurements_json",
    "measurements_path",
    "save_measurements",
]

logger = logging.getLogger(__name__)

_FORMAT = "birdview-measurements"
SCHEMA_VERSION = 1
_MAX_BYTES = 16 * 1024**2  # far above thousands of measurements


def measurement_to_dict(measurement: Measurement) -> dict[str, Any]:
    return {
        "kind": measurement.kind,
        "plane": measurement.plane.value,
        "slice_index": measurement.slice_index,
        "points_px": [list(p) for p in measurement.points_px],
        "label": measurement.label,
    }


def measurement_from_dict(data: object) -> Measurement:
    """The measurement written by `measurement_to_dict`, its types checked.

    Raises:
        TypeError, ValueError: a field is missing or invalid.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"a measurement is {type(data).__name__!r}, not an object")
    points = data.get("points_px")
    if not isinstance(points, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(_is_number(v) for v in p) for p in points
    ):
        raise TypeError(f"'points_px' is not a list of [x, y] numbers: {points!r}")
    kind, plane, index = data.get("kind"), data.get("plane"), data.get("slice_index")
    if not (isinstance(kind, str) and isinstance(plane, str)):
        raise TypeError("'kind' and 'plane' must be text")
    if not isinstance(index, int) or isinstance(index, bool):
        raise TypeError(f"'slice_index' is {type(index).__name__!r}")
    label = data.get("label", "")
    if not isinstance(label, str):
        raise TypeError(f"'label' is {type(label).__name__!r}")
    return Measurement(kind, plane, index, tuple(tuple(p) for p in points), label)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# -- files ----------------------------------------------------------------------------------


def measurements_path(identity: str, base_dir: str | os.PathLike) -> Path:
    """``base_dir/measurements-<16 hex>.json``, beside the study's session file."""
    return study_file_path(identity, base_dir, "measurements")


def save_measurements(
    identity: str, items: Iterable[Measurement], base_dir: str | os.PathLike
) -> Path:
    """Write a study's measurements to its file in ``base_dir`` (an empty list removes the
    file); returns the path.

    Raises:
        ValueError: the file there belongs to another study (it is left as it is).
        OSError: the file could not be written.
    """
    items = list(items)
    data = {
        "format": _FORMAT,
        "schema_version": SCHEMA_VERSION,
        "study_identity": identity,
        "measurements": [measurement_to_dict(m) for m in items],
    }
    path = measurements_path(identity, base_dir)
    save_study_json(path, identity, "measurements", data if items else None, _identity)
    logger.debug("saved %d measurements", len(items))
    return path


def load_measurements(identity: str, base_dir: str | os.PathLike) -> list[Measurement]:
    """The saved measurements of study ``identity`` ([] when it has none).

    Raises:
        ValueError: the file is damaged, or it belongs to another study.
        OSError: the file could not be read.
    """
    path = measurements_path(identity, base_dir)
    return load_study_file(path, identity, "measurements", _read) or []


def _identity(path: Path) -> str:
    return _read(path)[0]


def _read(path: Path) -> tuple[str, list[Measurement]]:
    with open(path, "rb") as file:
        raw = file.read(_MAX_BYTES + 1)
    name = path.name
    if len(raw) > _MAX_BYTES:
        raise ValueError(f"Unable to read the measurements {name!r} as the file is too large")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ValueError(f"Unable to read the measurements {name!r} as it is not JSON") from None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise ValueError(f"Unable to read {name!r} as it is not a BirdView measurements file")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(
            f"Unable to read the measurements {name!r} as its schema version "
            f"{data.get('schema_version')!r} is not {SCHEMA_VERSION}"
        )
    identity = data.get("study_identity")
    try:
        StudyRef(identity)  # type: ignore[arg-type]
        entries = data.get("measurements")
        if not isinstance(entries, list):
            raise TypeError("'measurements' is not a list")
        return identity, [measurement_from_dict(m) for m in entries]
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"Unable to read the measurements {name!r} as a field is malformed ({exc})"
        ) from None


# -- export ---------------------------------------------------------------------------------


def measurements_json(
    items: Iterable[Measurement], volume: Volume, slab: Slab | None = None
) -> dict[str, Any]:
    """The export's "measurements" section: calibration, then every measurement with its
    points (pixel edges and patient LPS mm) and values with units. With an active ``slab``
    (what the views show), ROI statistics are of its projection, as on screen: the entry
    names the slab ("slab") and keeps the centre slice's statistics ("slice_values")."""
    calibration = calibration_of(volume)
    entries = []
    for n, m in enumerate(items):
        values = measure(m, volume, slab)
        entry = {
            "index": n,
            **measurement_to_dict(m),
            "points_lps_mm": points_lps_mm(volume, m.plane, m.slice_index, m.points_px)
            .round(3)
            .tolist(),
            "values": _values(values),
            "text": values.lines(),
        }
        if values.projection:  # the statistics are of the slab's projection, not the slice
            entry["slab"] = slab_record(volume, m.plane, m.slice_index, slab)
            entry["slice_values"] = _values(measure(m, volume))
        entries.append(entry)
    return {
        "study_identity": volume.identity,
        "calibration": {
            "length_unit": calibration.length_unit,
            "source": calibration.source,
            "factor": calibration.factor,
            "value_unit": calibration.value_unit,
        },
        "items": entries,
    }


def points_lps_mm(volume: Volume, plane, slice_index: int, points_px) -> np.ndarray:
    """Pixel-edge points of a slice in patient LPS mm, shape (n, 3)."""
    return np.array(
        [
            volume.index_to_lps(
                geometry.view_to_index(volume, plane, slice_index, x - 0.5, y - 0.5)
            )
            for x, y in points_px
        ]
    )


def _values(values: Measured) -> dict[str, Any]:
    unit = values.calibration.length_unit
    out: dict[str, Any] = {}
    if values.length is not None:
        out["length"] = {"value": values.length, "unit": unit}
    if values.angle_deg is not None:
        out["angle"] = {"value": values.angle_deg, "unit": "deg"}
    if values.area is not None:
        out["area"] = {"value": values.area, "unit": f"{unit}2"}
        out["pixel_count"] = values.pixel_count
    if values.mean is not None:
        for key in ("mean", "sd", "minimum", "maximum"):
            out[key] = {"value": getattr(values, key), "unit": values.calibration.value_unit}
    return out
