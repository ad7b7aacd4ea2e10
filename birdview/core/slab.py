"""Thick-slab projections: MIP, MinIP and average through a slab of slices.

A slab is centred on the slice a view shows and is ``thickness_mm`` thick along the plane's
normal; it covers ``round(thickness / slice spacing)`` slices (at least one), clamped at the
volume's ends. The result is a 2D image in the same orientation as `geometry.extract_slice`,
so the views draw it exactly as they draw a plain slice.

CT angiography reads vessels on a MIP (brightest voxel along the slab); lung nodules stand
out on a MIP too, and airways on a MinIP (darkest voxel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from birdview.core import geometry
from birdview.core.geometry import Plane
from birdview.core.volume import Volume

__all__ = [
    "SLAB_MODES",
    "Slab",
    "SlabMode",
    "slab_image",
    "slab_indices",
    "slab_record",
    "slab_slice_count",
    "slab_text",
    "slab_value",
]

SlabMode = Literal["off", "mip", "minip", "average"]
SLAB_MODES: dict[str, str] = {"off": "Off", "mip": "MIP", "minip": "MinIP", "average": "Average"}
MAX_THICKNESS_MM = 500.0

# The array axis a plane's slices run along (voxels are (k, j, i)).
_ARRAY_AXIS = {Plane.AXIAL: 0, Plane.CORONAL: 1, Plane.SAGITTAL: 2}
# The (i, j, k) spacing entry along each plane's normal.
_SPACING_AXIS = {Plane.SAGITTAL: 0, Plane.CORONAL: 1, Plane.AXIAL: 2}


@dataclass(frozen=True)
class Slab:
    """How a view projects: ``mode`` "off" shows the plain slice."""

    mode: SlabMode = "off"
    thickness_mm: float = 10.0

    def __post_init__(self) -> None:
        if self.mode not in SLAB_MODES:
            raise ValueError(
                f"Unable to use slab mode {self.mode!r} as it is not one of {tuple(SLAB_MODES)}"
            )
        thickness = float(self.thickness_mm)
        if not (np.isfinite(thickness) and 0 < thickness <= MAX_THICKNESS_MM):
            raise ValueError(
                f"Unable to use a slab {self.thickness_mm!r} mm thick as it is not in "
                f"(0, {MAX_THICKNESS_MM:.0f}] mm"
            )
        object.__setattr__(self, "thickness_mm", thickness)

    @property
    def active(self) -> bool:
        return self.mode != "off"

    def label(self) -> str:
        """How the views name it: "MIP 10.0 mm"."""
        return f"{SLAB_MODES[self.mode]} {self.thickness_mm:.1f} mm" if self.active else ""


def slab_slice_count(volume: Volume, plane: Plane, thickness_mm: float) -> int:
    """How many slices a slab ``thickness_mm`` thick covers in ``plane`` (at least one)."""
    spacing = volume.spacing_mm[_SPACING_AXIS[Plane(plane)]]
    return max(1, int(round(float(thickness_mm) / spacing)))


def slab_indices(volume: Volume, plane: Plane, index: int, thickness_mm: float) -> range:
    """The slice indices of the slab centred on ``index``, clamped into the volume (so a slab
    at the edge is thinner, never shifted onto slices the user is not looking at)."""
    plane = Plane(plane)
    count = slab_slice_count(volume, plane, thickness_mm)
    first = int(index) - (count - 1) // 2
    last = first + count - 1
    return range(max(first, 0), min(last, geometry.slice_count(volume, plane) - 1) + 1)


def slab_record(volume: Volume, plane: Plane, index: int, slab: Slab) -> dict:
    """The slab centred on slice ``index`` as exports write it: mode, thickness and the
    slices it covers (array indices, as measurements give theirs, and their names)."""
    plane = Plane(plane)
    indices = slab_indices(volume, plane, index, slab.thickness_mm)
    return {
        "mode": slab.mode,
        "name": slab.label(),
        "thickness_mm": slab.thickness_mm,
        "first_slice_index": indices.start,
        "last_slice_index": indices.stop - 1,
        "slice_count": len(indices),
        "slices": geometry.slice_span_name(volume, plane, indices.start, indices.stop - 1),
    }


def slab_text(volume: Volume, plane: Plane, index: int, slab: Slab) -> str:
    """The slab in words: "MIP 10.0 mm over Im 10–14 (5 slices)"."""
    record = slab_record(volume, plane, index, slab)
    count = record["slice_count"]
    return f"{record['name']} over {record['slices']} ({count} slice{'s' * (count != 1)})"


def slab_image(volume: Volume, plane: Plane, index: int, slab: Slab | None) -> np.ndarray:
    """The image a view shows for slice ``index``: the plain slice, or the slab's projection
    (float32 for an average, the voxels' type for MIP and MinIP).

    Raises:
        IndexError: when ``index`` is outside the plane's slices.
    """
    plane = Plane(plane)
    plain = geometry.extract_slice(volume, plane, index)  # also checks the index
    if slab is None or not slab.active:
        return plain
    indices = slab_indices(volume, plane, index, slab.thickness_mm)
    if len(indices) == 1:
        return plain
    axis = _ARRAY_AXIS[plane]
    projected = _project(np.take(volume.voxels, indices, axis=axis), axis, slab.mode)
    # Coronal and sagittal views show k upside down (see geometry.extract_slice).
    return projected if plane is Plane.AXIAL else projected[::-1]


def slab_value(volume: Volume, plane: Plane, ijk: tuple[int, int, int], slab: Slab | None):
    """What a view of ``plane`` shows at voxel ``ijk`` (on the slice it shows): the voxel's
    value, or the slab's projection through it, the same number `slab_image` puts there
    (a scalar, or the RGB triple of a colour image). Reads one line of voxels, not the slab.

    Raises:
        IndexError: ``ijk`` is outside the volume.
    """
    plane = Plane(plane)
    i, j, k = (int(v) for v in ijk)
    n_k, n_j, n_i = volume.shape
    if not (0 <= i < n_i and 0 <= j < n_j and 0 <= k < n_k):
        raise IndexError(f"Unable to read voxel {(i, j, k)!r} of a volume of shape {volume.shape}")
    if slab is None or not slab.active:
        return volume.voxels[k, j, i]
    index = (k, j, i)[_ARRAY_AXIS[plane]]
    indices = slab_indices(volume, plane, index, slab.thickness_mm)
    if len(indices) == 1:
        return volume.voxels[k, j, i]
    where: list = [k, j, i]
    where[_ARRAY_AXIS[plane]] = slice(indices.start, indices.stop)
    line = volume.voxels[tuple(where)]  # (slices,) or (slices, 3)
    return _project(line, 0, slab.mode)


def _project(block: np.ndarray, axis: int, mode: str) -> np.ndarray:
    if mode == "mip":
        return block.max(axis=axis)
    if mode == "minip":
        return block.min(axis=axis)
    return block.mean(axis=axis, dtype=np.float32)
