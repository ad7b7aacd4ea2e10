"""Linked review of two series: which slice of B shows the place slice n of A shows.

Slices are matched by patient position, not by index: the centre of A's slice is projected on
the plane's normal (patient LPS, mm), and B's slice whose centre lies nearest along that same
normal is chosen. Two series of one scan (another sequence, a thinner or thicker
reconstruction, a shorter range) then scroll together even when their spacing and extents
differ. Series of different scans share positions only when they share a Frame of Reference
(the scanner's coordinates); otherwise the match is by scanner coordinates and `frame_note`
says so, because without registration the same position need not be the same anatomy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from birdview.core import geometry
from birdview.core.geometry import Plane
from birdview.core.labels_dicom import study_frame_of_reference
from birdview.core.volume import Volume

__all__ = ["SliceMatch", "frame_note", "linked_cursor", "match_slice", "slice_centre_lps"]

# Planes whose normals differ by more than this are not "the same plane" in both series.
MAX_NORMAL_ANGLE_DEG = 5.0

_SLICE_AXIS = {Plane.SAGITTAL: 0, Plane.CORONAL: 1, Plane.AXIAL: 2}


@dataclass(frozen=True)
class SliceMatch:
    """B's slice for one slice of A.

    Attributes:
        index: B's slice nearest in position (clamped into B).
        offset_mm: how far B's slice lies from A's along the normal (B minus A).
        inside: False when A's slice lies beyond B's extent (more than half a slice out);
            then ``index`` is B's end slice nearest to it.
    """

    index: int
    offset_mm: float
    inside: bool


def slice_centre_lps(volume: Volume, plane: Plane, index: int) -> np.ndarray:
    """Patient position (LPS, mm) of the centre of slice ``index`` of ``plane``."""
    plane = Plane(plane)
    image = geometry.extract_slice(volume, plane, index)
    rows, cols = image.shape[:2]
    ijk = geometry.view_to_index(volume, plane, index, (cols - 1) / 2, (rows - 1) / 2)
    return volume.index_to_lps(ijk)


def match_slice(a: Volume, plane: Plane, index_a: int, b: Volume) -> SliceMatch | None:
    """The slice of ``b`` in ``plane`` nearest in position to slice ``index_a`` of ``a``.

    None when either series has no patient geometry, or when their ``plane`` normals differ by
    more than `MAX_NORMAL_ANGLE_DEG` (then no slice of B is parallel to A's).
    """
    plane = Plane(plane)
    if not (a.has_geometry and b.has_geometry):
        return None
    axis = _SLICE_AXIS[plane]
    normal = a.direction[:, axis] / np.linalg.norm(a.direction[:, axis])
    along_b = b.direction[:, axis] / np.linalg.norm(b.direction[:, axis])
    cosine = float(normal @ along_b)
    if abs(cosine) < math.cos(math.radians(MAX_NORMAL_ANGLE_DEG)):
        return None
    target_mm = float(slice_centre_lps(a, plane, index_a) @ normal)
    first_mm = float(slice_centre_lps(b, plane, 0) @ normal)
    step_mm = b.spacing_mm[axis] * cosine  # how far along A's normal one slice of B moves
    count = geometry.slice_count(b, plane)
    exact = (target_mm - first_mm) / step_mm
    index = int(min(max(round(exact), 0), count - 1))
    return SliceMatch(
        index=index,
        offset_mm=first_mm + index * step_mm - target_mm,
        inside=-0.5 <= exact <= count - 0.5,
    )


def linked_cursor(
    a: Volume, ijk_a: tuple[int, int, int], b: Volume, ijk_b: tuple[int, int, int]
) -> tuple[int, int, int]:
    """B's cursor for A's cursor ``ijk_a``: in each plane, B's slice matching the slice of A
    through the cursor. Where a plane cannot be matched, B's current ``ijk_b`` stays."""
    linked = list(ijk_b)
    for plane in Plane:
        index_a = geometry.index_to_view(a, plane, ijk_a)[0]
        match = match_slice(a, plane, index_a, b)
        if match is not None:
            linked[_SLICE_AXIS[plane]] = match.index
    return (int(linked[0]), int(linked[1]), int(linked[2]))


def frame_note(a: Volume, b: Volume) -> str:
    """Empty when positions in A and B are comparable, else why they may not be one anatomy."""
    if not (a.has_geometry and b.has_geometry):
        return "no patient geometry: not linked"
    frame_a, frame_b = study_frame_of_reference(a), study_frame_of_reference(b)
    if frame_a and frame_b and frame_a != frame_b:
        return "other frame of reference: linked by scanner position, not registered"
    return ""
