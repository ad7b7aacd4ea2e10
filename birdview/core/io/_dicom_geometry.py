"""Stacking slices: sort them along their normal, measure the spacing, and say what is odd.

Slices are sorted by their position along the slice normal, dot(IPP, row × column), which is
what the stack really is; file names, instance numbers and UIDs only break ties, or order
slices that carry no geometry at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from birdview.core.io._dicom_header import FrameInfo, Header

# Positions closer than this along the normal are the same position.
_SAME_POSITION_MM = 1e-3
# A stack whose drift across the slices stays under this is not tilted (rounding of IPP).
_TILT_MIN_DEG = 0.1
_TILT_MIN_DRIFT_MM = 0.05


@dataclass(frozen=True)
class Slice:
    """One slice to stack: a frame of a file."""

    header: Header
    frame: FrameInfo


@dataclass(frozen=True)
class Stack:
    slices: tuple[Slice, ...]
    spacing_mm: tuple[float, float, float]  # (column, row, slice)
    origin_lps_mm: tuple[float, float, float]
    direction: tuple[float, ...]  # 3×3 row-major; columns are row dir, column dir, normal
    has_geometry: bool
    warnings: tuple[str, ...]


def stack(slices: list[Slice], *, keep_order: bool = False) -> Stack:
    """Sort ``slices`` (unless ``keep_order``) and work out the volume geometry."""
    first = slices[0]
    axes = _axes(first.frame.orientation)
    positions = [s.frame.position for s in slices]
    located = axes is not None and all(p is not None for p in positions)
    if located and not keep_order:
        normal = axes[2]
        slices = sorted(slices, key=lambda s: (_along(s.frame.position, normal), *_tie_key(s)))
    elif not keep_order and not located:
        slices = sorted(slices, key=_tie_key)
    warnings: list[str] = []
    step = None
    if located and len(slices) > 1:
        points = np.array([s.frame.position for s in slices], dtype=float)
        step, warnings = _check_steps(points, axes[2])
    step = step or _fallback_step(first.header)
    col_mm, row_mm = _in_plane_spacing(first.header)
    origin = slices[0].frame.position if slices[0].frame.position is not None else (0.0, 0.0, 0.0)
    matrix = np.eye(3) if axes is None else np.column_stack(axes)
    return Stack(
        slices=tuple(slices),
        spacing_mm=(col_mm, row_mm, step),
        origin_lps_mm=tuple(float(v) for v in origin),  # type: ignore[arg-type]
        direction=tuple(float(v) for v in matrix.reshape(-1)),
        # Orientation letters and patient positions need both IOP and IPP.
        has_geometry=axes is not None and slices[0].frame.position is not None,
        warnings=tuple(warnings),
    )


def orientation_key(orientation: tuple[float, ...] | None) -> tuple[float, ...] | None:
    """Orientations equal to about 0.06° compare equal."""
    if _axes(orientation) is None:
        return None
    return tuple(round(v, 3) + 0.0 for v in orientation)  # type: ignore[union-attr]


def plane_name(orientation: tuple[float, ...] | None) -> str:
    """'axial', 'coronal', 'sagittal' or 'oblique', from the slice normal."""
    axes = _axes(orientation)
    if axes is None:
        return "no orientation"
    normal = np.abs(axes[2])
    if normal.max() < 0.9:
        return "oblique"
    return ("sagittal", "coronal", "axial")[int(normal.argmax())]


def _axes(orientation: tuple[float, ...] | None) -> tuple[np.ndarray, ...] | None:
    """Unit row direction, column direction and normal, or None if they make no sense."""
    if orientation is None:
        return None
    row, col = np.array(orientation[:3], dtype=float), np.array(orientation[3:], dtype=float)
    row_len, col_len = np.linalg.norm(row), np.linalg.norm(col)
    if row_len < 1e-6 or col_len < 1e-6:
        return None
    row, col = row / row_len, col / col_len
    normal = np.cross(row, col)
    if np.linalg.norm(normal) < 0.5:  # not even roughly perpendicular
        return None
    return row, col, normal / np.linalg.norm(normal)


def _along(position: tuple[float, float, float] | None, normal: np.ndarray) -> float:
    return float(np.dot(position, normal))  # type: ignore[arg-type]


def _tie_key(s: Slice) -> tuple:
    number = s.header.instance_number
    frame = s.frame.frame if s.frame.frame is not None else -1
    return (number is None, number or 0, s.header.path, frame)


def _check_steps(points: np.ndarray, normal: np.ndarray) -> tuple[float | None, list[str]]:
    """The typical step along the normal, and warnings about gaps, jitter, duplicates, tilt."""
    steps = np.diff(points @ normal)
    moving = steps[steps > _SAME_POSITION_MM]
    warnings = []
    duplicates = int(len(steps) - len(moving))
    if duplicates:
        warnings.append(
            f"duplicate positions: {duplicates} slice(s) share a position with another slice"
        )
    if len(moving) == 0:
        return None, warnings
    typical = float(np.median(moving))
    warnings += _spacing_warnings(moving, typical)
    tilt = _tilt_warning(points, normal)
    if tilt:
        warnings.append(tilt)
    return typical, warnings


def _spacing_warnings(steps: np.ndarray, typical: float) -> list[str]:
    tolerance = max(0.02, 0.01 * typical)
    ratios = steps / typical
    multiples = np.rint(ratios)
    gaps = (multiples >= 2) & (np.abs(steps - multiples * typical) <= max(tolerance, 0.1 * typical))
    warnings = []
    if gaps.any():
        missing = int((multiples[gaps] - 1).sum())
        warnings.append(
            f"missing slices: about {missing} slice(s) missing "
            f"(gaps of up to {steps[gaps].max():.2f} mm where the spacing is {typical:.2f} mm)"
        )
    regular = steps[~gaps]
    if len(regular) and regular.max() - regular.min() > tolerance:
        warnings.append(
            f"uneven slice spacing: steps between slices range from {regular.min():.2f} mm "
            f"to {regular.max():.2f} mm"
        )
    return warnings


def _tilt_warning(points: np.ndarray, normal: np.ndarray) -> str | None:
    """Gantry tilt: the slices are stacked along a direction that is not their normal."""
    travel = points[-1] - points[0]
    length = float(np.linalg.norm(travel))
    if length < _SAME_POSITION_MM:
        return None
    along = abs(float(np.dot(travel, normal)))
    drift = math.sqrt(max(length**2 - along**2, 0.0))
    angle = math.degrees(math.acos(min(1.0, along / length)))
    if angle < _TILT_MIN_DEG or drift < _TILT_MIN_DRIFT_MM:
        return None
    return (
        f"gantry tilt: the slices are stacked {angle:.1f}° off their normal; "
        "the volume is shown unsheared, so positions drift across the stack"
    )


def _fallback_step(header: Header) -> float:
    return header.spacing_between or header.slice_thickness or 1.0


def _in_plane_spacing(header: Header) -> tuple[float, float]:
    """(column spacing, row spacing): PixelSpacing is stored as [row spacing, column spacing]."""
    if header.pixel_spacing is None:
        return (1.0, 1.0)
    row_mm, col_mm = header.pixel_spacing
    return (col_mm, row_mm)
