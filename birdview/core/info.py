"""The report behind ``birdview info``: what a path holds, as plain data.

The JSON shape is a public interface (scripts parse it); add keys, never rename or remove:
``{"series": [{"description", "modality", "kind", "shape", "spacing", "warnings", ...}],
"errors": [{"path", "message"}]}``. No patient identity is included.
"""

from __future__ import annotations

import os
from typing import Any

from birdview.core.errors import VolumeReadError
from birdview.core.io import load, scan
from birdview.core.io.catalog import SeriesEntry
from birdview.core.volume import Volume

__all__ = ["describe_path", "format_report"]


def describe_path(path: str | os.PathLike) -> dict[str, Any]:
    """Scan and load everything under ``path``; never raises for unreadable input."""
    report: dict[str, Any] = {"path": os.fspath(path), "series": [], "errors": []}
    try:
        catalog = scan(path)
    except VolumeReadError as exc:
        report["errors"].append({"path": exc.path, "message": str(exc)})
        return report
    report["errors"].extend({"path": p.path, "message": p.message} for p in catalog.problems)
    for entry in catalog.entries:
        try:
            volume = load(entry)
        except VolumeReadError as exc:
            report["errors"].append({"path": exc.path, "message": str(exc)})
            continue
        report["series"].append(_describe_series(entry, volume))
    return report


def _describe_series(entry: SeriesEntry, volume: Volume) -> dict[str, Any]:
    from birdview.core.geometry import acquisition_plane

    return {
        "description": entry.description,
        "modality": volume.modality,
        "kind": entry.kind,
        "key": entry.key,
        "series_number": entry.series_number,
        "shape": list(volume.voxels.shape),
        "dtype": str(volume.voxels.dtype),
        "spacing": [round(s, 6) for s in volume.spacing_mm],
        "origin": [round(v, 4) for v in volume.origin_lps_mm],
        "direction": [[round(v, 6) for v in row] for row in volume.direction.tolist()],
        "plane": acquisition_plane(volume).value if volume.has_geometry else None,
        "window": list(volume.window) if volume.window is not None else None,
        "files": len(set(entry.paths)),
        "warnings": list(volume.warnings),
    }


def format_report(report: dict[str, Any]) -> str:
    """A short human-readable version of the report."""
    lines = [f"{len(report['series'])} series in {report['path']}"]
    for number, series in enumerate(report["series"], 1):
        shape = "×".join(str(n) for n in series["shape"])
        spacing = " × ".join(f"{s:.3g}" for s in series["spacing"])
        lines.append(
            f"  {number}. {series['modality']:<3} {series['description'] or '(no description)'}"
            f" — {shape} voxels, {spacing} mm, {series['kind']}"
        )
        lines.extend(f"       ! {warning}" for warning in series["warnings"])
    if report["errors"]:
        lines.append(f"{len(report['errors'])} could not be read:")
        lines.extend(f"  - {error['message']}" for error in report["errors"])
    return "\n".join(lines)
