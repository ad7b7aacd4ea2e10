"""Views of a volume in the three anatomical planes, in radiological convention.

`to_canonical` reorders a volume's index axes (no resampling) so that i runs towards the
patient's left, j posterior and k superior. On such a volume the planes are plain slices of the
voxel array, and `extract_slice` returns them the way radiologists read them:

- axial: seen from the feet; screen left = patient right, top = anterior;
- coronal: seen from the front; screen left = patient right, top = superior;
- sagittal: seen from the patient's left; screen left = anterior, top = superior.

Every other function here works in index terms on any volume, canonical or not, and derives
what it says about the patient (orientation letters, positions) from the direction matrix, so
it stays truthful when a volume is shown without `to_canonical`.

Screen positions are continuous pixel-centre coordinates: the centre of the top-left pixel is
(col, row) = (0, 0).
"""

from __future__ import annotations

import itertools
import logging
import math
from enum import Enum

import numpy as np

from birdview.core.volume import SliceSource, Volume

__all__ = [
    "Plane",
    "acquisition_plane",
    "extract_slice",
    "index_to_view",
    "orientation_letters",
    "pixel_size_mm",
    "reading_position",
    "reads_backwards",
    "slice_count",
    "slice_label",
    "slice_name",
    "slice_position_mm",
    "slice_source",
    "slice_span_name",
    "to_canonical",
    "view_to_index",
]

logger = logging.getLogger(__name__)

# Directions within this angle of a patient axis count as aligned; beyond it we warn, and
# orientation labels gain a second letter.
OBLIQUE_TOLERANCE_DEG = 1.0
_SECOND_LETTER_MIN = math.sin(math.radians(OBLIQUE_TOLERANCE_DEG))

# Key under which `to_canonical` remembers the plane the slices were acquired in, because a
# canonical volume's own slice normal is always superior.
ACQUISITION_PLANE_KEY = "acquisition_plane"

_OBLIQUE_PREFIX = "oblique orientation"


class Plane(str, Enum):
    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"


# The patient axis (0 = x, 1 = y, 2 = z in LPS) each plane's normal points along.
_NORMAL_AXIS = {Plane.SAGITTAL: 0, Plane.CORONAL: 1, Plane.AXIAL: 2}

# The index axis (0 = i, 1 = j, 2 = k) each plane's slices are numbered along.
_SLICE_AXIS = {Plane.SAGITTAL: 0, Plane.CORONAL: 1, Plane.AXIAL: 2}

# Radiology's reading order through a stack, as every PACS pages it: axial head to feet,
# coronal front to back, sagittal patient right to left. In LPS: -z, +y, +x.
_READING_DIRECTION_LPS = {
    Plane.AXIAL: (0.0, 0.0, -1.0),
    Plane.CORONAL: (0.0, 1.0, 0.0),
    Plane.SAGITTAL: (1.0, 0.0, 0.0),
}

# Index-space unit vectors (i, j, k) of "screen right" and "screen down" in each plane.
_SCREEN_AXES = {
    Plane.AXIAL: ((1, 0, 0), (0, 1, 0)),
    Plane.CORONAL: ((1, 0, 0), (0, 0, -1)),
    Plane.SAGITTAL: ((0, 1, 0), (0, 0, -1)),
}

# Letters of the +x, +y, +z and -x, -y, -z LPS directions.
_POSITIVE_LETTERS = ("L", "P", "S")
_NEGATIVE_LETTERS = ("R", "A", "I")


# -- canonical order ------------------------------------------------------------------------


def to_canonical(volume: Volume) -> Volume:
    """The same volume with index axes permuted/flipped so that i→L, j→P, k→S.

    Each index axis is assigned to the patient axis it is closest to; the physical mapping
    (`Volume.index_to_lps` of each voxel) is unchanged. A direction more than
    `OBLIQUE_TOLERANCE_DEG` off its snapped axis adds a warning. Idempotent; volumes without
    geometry come back unchanged.
    """
    if not volume.has_geometry:
        return volume
    perm, flips = _axis_assignment(volume.direction)
    warnings = volume.warnings
    note = _oblique_note(volume, perm)
    if note and not any(w.startswith(_OBLIQUE_PREFIX) for w in warnings):
        warnings = (*warnings, note)
    if perm == (0, 1, 2) and not any(flips):
        return volume if warnings == volume.warnings else volume.with_changes(warnings=warnings)

    sizes = (volume.shape[2], volume.shape[1], volume.shape[0])  # along (i, j, k)
    old_ijk_of_origin = [sizes[perm[p]] - 1 if flips[p] else 0 for p in range(3)]
    old_ijk = np.zeros(3)
    for p in range(3):
        old_ijk[perm[p]] = old_ijk_of_origin[p]
    signs = np.where(flips, -1.0, 1.0)
    direction = volume.direction[:, list(perm)] * signs

    logger.debug("canonical order for %s: axes %s, flips %s", volume.short_id, perm, flips)
    return volume.with_changes(
        voxels=_reorder_voxels(volume.voxels, perm, flips),
        spacing_mm=tuple(volume.spacing_mm[perm[p]] for p in range(3)),
        origin_lps_mm=tuple(volume.index_to_lps(old_ijk)),
        direction=direction,
        source_axis=perm.index(volume.source_axis),
        sources=_reorder_sources(volume, perm, flips),
        warnings=warnings,
        metadata={**volume.metadata, ACQUISITION_PLANE_KEY: acquisition_plane(volume).value},
    )


def _axis_assignment(direction: np.ndarray) -> tuple[tuple[int, int, int], tuple[bool, ...]]:
    """For each patient axis p, the old index axis perm[p] closest to it, and whether it runs
    backwards. Checking all six permutations keeps the assignment one-to-one even for
    directions near 45°; the identity comes first, so ties keep the current order."""
    magnitude = np.abs(direction)
    perm = max(
        itertools.permutations(range(3)),
        key=lambda order: sum(magnitude[p, order[p]] for p in range(3)),
    )
    flips = tuple(bool(direction[p, perm[p]] < 0) for p in range(3))
    return perm, flips


def _oblique_note(volume: Volume, perm: tuple[int, ...]) -> str | None:
    """The warning for a volume whose axes are noticeably off the patient axes, else None."""
    cosines = [
        abs(volume.direction[p, perm[p]]) / np.linalg.norm(volume.direction[:, perm[p]])
        for p in range(3)
    ]
    angle = math.degrees(math.acos(min(1.0, min(cosines))))
    if angle <= OBLIQUE_TOLERANCE_DEG:
        return None
    plane = acquisition_plane(volume).value
    return f"{_OBLIQUE_PREFIX} ({angle:.1f}° from {plane}); shown on the nearest plane"


def _reorder_voxels(
    voxels: np.ndarray, perm: tuple[int, ...], flips: tuple[bool, ...]
) -> np.ndarray:
    """Views of the array with axes moved and reversed. Array axis a holds index axis 2 - a."""
    axes = [2 - perm[2 - a] for a in range(3)] + ([3] if voxels.ndim == 4 else [])
    step = tuple(slice(None, None, -1) if flips[2 - a] else slice(None) for a in range(3))
    return voxels.transpose(axes)[step]


def _reorder_sources(volume: Volume, perm: tuple[int, ...], flips: tuple[bool, ...]) -> tuple:
    """Sources follow their axis to its new place, reversed if that axis now runs backwards."""
    return (
        tuple(reversed(volume.sources)) if flips[perm.index(volume.source_axis)] else volume.sources
    )


def acquisition_plane(volume: Volume) -> Plane:
    """The plane the slices were acquired in: the one whose normal is closest to the slice
    normal (AXIAL for images without geometry). For a canonical volume, the plane recorded
    by `to_canonical`."""
    if not volume.has_geometry:
        return Plane.AXIAL
    recorded = volume.metadata.get(ACQUISITION_PLANE_KEY)
    if recorded in {p.value for p in Plane}:
        return Plane(recorded)
    axis = int(np.argmax(np.abs(volume.slice_normal)))
    return {0: Plane.SAGITTAL, 1: Plane.CORONAL, 2: Plane.AXIAL}[axis]


# -- slices ---------------------------------------------------------------------------------


def slice_count(volume: Volume, plane: Plane) -> int:
    """How many slices the volume has in a plane."""
    k, j, i = volume.shape
    return {Plane.AXIAL: k, Plane.CORONAL: j, Plane.SAGITTAL: i}[Plane(plane)]


def extract_slice(volume: Volume, plane: Plane, index: int) -> np.ndarray:
    """The 2D image (rows, cols) or (rows, cols, 3) of one slice, as shown on screen.

    A read-only view into the voxels, not a copy.

    Raises:
        IndexError: when ``index`` is outside the plane's slices.
    """
    plane = Plane(plane)
    index = _checked_index(volume, plane, index)
    if plane is Plane.AXIAL:
        return volume.voxels[index]
    if plane is Plane.CORONAL:
        return volume.voxels[::-1, index, :]
    return volume.voxels[::-1, :, index]


def _checked_index(volume: Volume, plane: Plane, index: int) -> int:
    count = slice_count(volume, plane)
    if not 0 <= int(index) < count:
        raise IndexError(
            f"Unable to show {plane.value} slice {index!r} as the volume has slices 0..{count - 1}"
        )
    return int(index)


def reads_backwards(volume: Volume, plane: Plane) -> bool:
    """True when radiology's reading order through ``plane`` runs against the slice index, as
    for the axial view of a canonical volume (k runs to the head; radiologists read from the
    head down). Never for a volume without geometry: its slices read in file order."""
    if not volume.has_geometry:
        return False
    plane = Plane(plane)
    along_index = volume.direction[:, _SLICE_AXIS[plane]]
    return float(along_index @ np.asarray(_READING_DIRECTION_LPS[plane])) < 0


def reading_position(volume: Volume, plane: Plane, index: int) -> int:
    """The 0-based place of slice ``index`` in radiology's reading order through ``plane``.

    The mapping is its own inverse, so it also gives the slice index at a reading position.
    Only what is shown and how the user pages depend on it; slice indices (cursor, boxes,
    model input) stay in index order.
    """
    if reads_backwards(volume, plane):
        return slice_count(volume, plane) - 1 - int(index)
    return int(index)


def slice_source(volume: Volume, plane: Plane, index: int) -> SliceSource | None:
    """The acquired slice shown as slice ``index`` of ``plane``: None for a reformatted plane
    (one the slices were not acquired in) or a volume without sources."""
    plane = Plane(plane)
    if _SLICE_AXIS[plane] != volume.source_axis or len(volume.sources) != slice_count(
        volume, plane
    ):
        return None
    return volume.sources[int(index)] if 0 <= int(index) < len(volume.sources) else None


def slice_name(volume: Volume, plane: Plane, index: int) -> str:
    """How people name slice ``index`` of ``plane``: "Im 276" (its Instance Number) for an
    acquired DICOM slice, else "slice 10", counted in reading order as the views count."""
    source = slice_source(volume, plane, index)
    if source is not None and source.instance_number is not None:
        return f"Im {source.instance_number}"
    return f"slice {reading_position(volume, plane, index) + 1}"


def slice_label(volume: Volume, plane: Plane, index: int, *, compact: bool = False) -> str:
    """The views' slice line: ``Im <Instance Number> (n/N)`` for an acquired DICOM slice, else
    ``Slice n/N``; n counts in reading order (axial from the head down), not in index order.
    ``compact`` (the small views) gives ``Im <Instance Number>`` or ``n/N``."""
    n, count = reading_position(volume, plane, index) + 1, slice_count(volume, plane)
    source = slice_source(volume, plane, index)
    if source is not None and source.instance_number is not None:
        return f"Im {source.instance_number}" + ("" if compact else f" ({n}/{count})")
    return f"{n}/{count}" if compact else f"Slice {n}/{count}"


def slice_span_name(volume: Volume, plane: Plane, first: int, last: int) -> str:
    """The slices ``first``..``last`` of ``plane`` named as `slice_name` does, in reading
    order: "Im 267–277", "slices 3–9", or one name when they are the same slice."""
    ends = sorted({int(first), int(last)}, key=lambda i: reading_position(volume, plane, i))
    names = [slice_name(volume, plane, i) for i in ends]
    if len(names) == 1:
        return names[0]
    (kind_a, _, a), (kind_b, _, b) = (name.rpartition(" ") for name in names)
    if kind_a == kind_b:
        return f"{'slices' if kind_a == 'slice' else kind_a} {a}–{b}"
    return f"{names[0]} to {names[1]}"


def pixel_size_mm(volume: Volume, plane: Plane) -> tuple[float, float]:
    """(width, height) in mm of one displayed pixel, for drawing with the right aspect."""
    si, sj, sk = volume.spacing_mm
    return {Plane.AXIAL: (si, sj), Plane.CORONAL: (si, sk), Plane.SAGITTAL: (sj, sk)}[Plane(plane)]


def orientation_letters(volume: Volume, plane: Plane) -> dict[str, str] | None:
    """The patient direction each screen edge points to, e.g. {"left": "R", "right": "L",
    "top": "A", "bottom": "P"} for the axial view of a canonical volume; oblique directions
    get two letters, the larger component first ("RA"). None without geometry."""
    if not volume.has_geometry:
        return None
    right, down = (
        volume.direction @ np.asarray(v, dtype=float) for v in _SCREEN_AXES[Plane(plane)]
    )
    return {
        "left": _direction_letters(-right),
        "right": _direction_letters(right),
        "top": _direction_letters(-down),
        "bottom": _direction_letters(down),
    }


def _direction_letters(xyz_lps: np.ndarray) -> str:
    unit = xyz_lps / np.linalg.norm(xyz_lps)
    order = np.argsort(-np.abs(unit), kind="stable")
    letters = []
    for axis in order[:2]:
        if letters and abs(unit[axis]) < _SECOND_LETTER_MIN:
            break
        letters.append((_POSITIVE_LETTERS if unit[axis] > 0 else _NEGATIVE_LETTERS)[axis])
    return "".join(letters)


# -- screen <-> index -----------------------------------------------------------------------


def view_to_index(
    volume: Volume, plane: Plane, slice_index: int, col: float, row: float
) -> tuple[float, float, float]:
    """The continuous voxel index (i, j, k) shown at (col, row) of a slice."""
    plane = Plane(plane)
    top_k = volume.shape[0] - 1  # coronal and sagittal views show k upside down
    if plane is Plane.AXIAL:
        return (float(col), float(row), float(slice_index))
    if plane is Plane.CORONAL:
        return (float(col), float(slice_index), float(top_k - row))
    return (float(slice_index), float(col), float(top_k - row))


def index_to_view(volume: Volume, plane: Plane, ijk) -> tuple[int, float, float]:
    """(slice_index, col, row) where voxel index (i, j, k) is shown: the inverse of
    `view_to_index`, with the slice rounded to the nearest one."""
    plane = Plane(plane)
    i, j, k = (float(v) for v in ijk)
    top_k = volume.shape[0] - 1
    if plane is Plane.AXIAL:
        return (int(round(k)), i, j)
    if plane is Plane.CORONAL:
        return (int(round(j)), i, top_k - k)
    return (int(round(i)), j, top_k - k)


def slice_position_mm(volume: Volume, plane: Plane, index: int) -> float:
    """The patient coordinate along the plane's normal (z axial, y coronal, x sagittal) of a
    slice, taken at the slice's centre so that it is meaningful for oblique volumes too."""
    plane = Plane(plane)
    image = extract_slice(volume, plane, index)
    rows, cols = image.shape[:2]
    ijk = view_to_index(volume, plane, index, (cols - 1) / 2, (rows - 1) / 2)
    return float(volume.index_to_lps(ijk)[_NORMAL_AXIS[plane]])
