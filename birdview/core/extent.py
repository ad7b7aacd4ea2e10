"""How far a structure found slice by slice reaches: slice range, 3D box in voxels and mm.

A volume sweep gives one box (or none) per slice of one plane. `extent_of` joins them into
the box a radiologist would report: the first and last slice with a finding, the 3D bounding
box in voxel indices and in patient LPS millimetres, and its size along the volume's axes.
Slices are thick: a finding on slices 3..5 covers from the near face of slice 3 to the far
face of slice 5, so the size along the slice axis is 3 slice spacings, not 2.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from birdview.core.box import Box
from birdview.core.geometry import Plane, slice_span_name
from birdview.core.volume import Volume

__all__ = ["Extent", "extent_of", "projection_on"]

# Canonical voxel axis (0 = i, 1 = j, 2 = k) that each plane's slices step along.
_SLICE_AXIS = {Plane.SAGITTAL: 0, Plane.CORONAL: 1, Plane.AXIAL: 2}


@dataclass(frozen=True)
class Extent:
    """The 3D extent of boxes found on slices of one plane.

    Attributes:
        plane: the plane swept.
        first_slice, last_slice: the slice range with a finding (inclusive), as indices.
        n_slices: slices with at least one box (≤ last - first + 1 when there are gaps).
        span: that range as people name it, in reading order ("Im 267–277", "slices 3–9").
        ijk_min, ijk_max: the bounding box in continuous voxel indices (outer voxel faces).
        lps_min_mm, lps_max_mm: the same box's corners mapped to LPS mm, min and max per axis.
        size_mm: its size along the volume's i, j and k axes, in mm.
    """

    plane: Plane
    first_slice: int
    last_slice: int
    n_slices: int
    ijk_min: tuple[float, float, float]
    ijk_max: tuple[float, float, float]
    lps_min_mm: tuple[float, float, float]
    lps_max_mm: tuple[float, float, float]
    size_mm: tuple[float, float, float]
    span: str

    def summary(self) -> str:
        """One line for people: slice range, size, and where it lies."""
        gaps = self.last_slice - self.first_slice + 1 - self.n_slices
        gap_text = f" ({gaps} without a finding in between)" if gaps else ""
        size = " × ".join(f"{v:.0f}" for v in self.size_mm)
        where = f"{self.plane.value} {self.span}{gap_text}"
        return f"{where}; extent {size} mm (R-L × A-P × I-S)"


def extent_of(volume: Volume, boxes: Iterable[Box]) -> Extent | None:
    """The extent of ``boxes`` (all on one plane of the canonical ``volume``); None if empty.

    Raises:
        ValueError: the boxes lie on different planes.
    """
    boxes = list(boxes)
    if not boxes:
        return None
    planes = {box.plane for box in boxes}
    if len(planes) != 1:
        raise ValueError(f"Unable to join boxes into an extent as they lie on {len(planes)} planes")
    plane = planes.pop()
    axis = _SLICE_AXIS[plane]
    corners = np.concatenate([box.to_voxel_corners(volume) for box in boxes])
    # In-plane the corners already lie on the outer pixel faces; along the slice axis they
    # lie on the slice centres, half a voxel inside its faces.
    low, high = corners.min(axis=0), corners.max(axis=0)
    low[axis] -= 0.5
    high[axis] += 0.5
    cube = np.array(
        [[(low, high)[bit >> a & 1][a] for a in range(3)] for bit in range(8)], dtype=float
    )
    lps = volume.index_to_lps(cube)
    size = (high - low) * np.asarray(volume.spacing_mm, dtype=float)
    slices = sorted({box.slice_index for box in boxes})
    return Extent(
        plane=plane,
        first_slice=slices[0],
        last_slice=slices[-1],
        n_slices=len(slices),
        ijk_min=tuple(float(v) for v in low),
        ijk_max=tuple(float(v) for v in high),
        lps_min_mm=tuple(float(v) for v in lps.min(axis=0)),
        lps_max_mm=tuple(float(v) for v in lps.max(axis=0)),
        size_mm=tuple(float(v) for v in size),
        span=slice_span_name(volume, plane, slices[0], slices[-1]),
    )


def projection_on(volume: Volume, extent: Extent, plane: Plane, slice_index: int) -> Box | None:
    """The extent's outline on slice ``slice_index`` of another ``plane`` (None when that slice
    does not cut the extent): how a finding from an axial sweep shows on coronal and sagittal
    views."""
    plane = Plane(plane)
    axis = _SLICE_AXIS[plane]
    if not extent.ijk_min[axis] < slice_index + 0.5 or not slice_index - 0.5 < extent.ijk_max[axis]:
        return None
    low, high = np.asarray(extent.ijk_min), np.asarray(extent.ijk_max)
    corners = []
    for bit in range(8):
        point = np.array([(low, high)[bit >> a & 1][a] for a in range(3)], dtype=float)
        point[axis] = slice_index
        corners.append(point)
    try:
        return Box.from_voxel(volume, plane, corners, label="extent")
    except ValueError:
        return None
