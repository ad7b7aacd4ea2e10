"""Linked review on real series: slices match by patient position in mm, not by index, across
different slice spacing and different extents (the sample MR and CT against re-filed copies
of some of their own slices)."""

from __future__ import annotations

import numpy as np
import pytest

from birdview.core import geometry
from birdview.core.geometry import Plane
from birdview.core.linking import frame_note, linked_cursor, match_slice, slice_centre_lps
from birdview.core.resources import resources_dir, sample_ct_dir
from birdview.core.volume import Volume
from tests.subseries import load_canonical, write_subseries

MR = resources_dir() / "samples" / "dcm4che_mr"
_SLICE_SPACING = {Plane.SAGITTAL: 0, Plane.CORONAL: 1, Plane.AXIAL: 2}


@pytest.fixture(scope="module")
def mr_pair(tmp_path_factory):
    """The 16-slice coronal MR (2 mm) and its every-second-slice copy (4 mm, shifted 2 mm)."""
    out = write_subseries(MR, tmp_path_factory.mktemp("mr") / "b", range(1, 16, 2), "every 2nd")
    return load_canonical(MR), load_canonical(out)


@pytest.fixture(scope="module")
def ct_pair(tmp_path_factory):
    """The 20-slice sample CT (2 mm) and every third slice of its upper part (6 mm, shorter)."""
    out = write_subseries(
        sample_ct_dir(), tmp_path_factory.mktemp("ct") / "b", range(8, 20, 3), "upper 6 mm"
    )
    return load_canonical(sample_ct_dir()), load_canonical(out)


def _positions(volume: Volume, plane: Plane) -> np.ndarray:
    return np.array(
        [
            geometry.slice_position_mm(volume, plane, n)
            for n in range(geometry.slice_count(volume, plane))
        ]
    )


@pytest.mark.parametrize("pair, plane", [("mr_pair", Plane.CORONAL), ("ct_pair", Plane.AXIAL)])
def test_each_slice_of_a_meets_the_nearest_slice_of_b_in_mm(request, pair, plane) -> None:
    a, b = request.getfixturevalue(pair)
    spacing_b = b.spacing_mm[_SLICE_SPACING[plane]]
    assert spacing_b > a.spacing_mm[_SLICE_SPACING[plane]]  # B really is thicker
    positions_b = _positions(b, plane)
    not_by_index = 0
    for index_a, mm_a in enumerate(_positions(a, plane)):
        match = match_slice(a, plane, index_a, b)
        assert match is not None
        # The nearest by position, over every slice of B (brute force, in mm).
        assert abs(positions_b[match.index] - mm_a) == pytest.approx(
            np.abs(positions_b - mm_a).min(), abs=1e-6
        )
        assert match.offset_mm == pytest.approx(positions_b[match.index] - mm_a, abs=1e-3)
        inside = positions_b.min() - spacing_b / 2 <= mm_a <= positions_b.max() + spacing_b / 2
        assert match.inside == inside
        if inside:
            assert abs(match.offset_mm) <= spacing_b / 2 + 1e-3
        not_by_index += match.index != index_a
    assert not_by_index > 0


def test_ct_slices_beyond_b_are_flagged_outside(ct_pair) -> None:
    a, b = ct_pair
    # B covers the upper part only (canonical k runs to the head): A's lowest slices are out.
    low = match_slice(a, Plane.AXIAL, 0, b)
    assert not low.inside and low.index == 0 and low.offset_mm > 6
    kept = match_slice(a, Plane.AXIAL, 17, b)  # the last slice the copy kept
    assert kept.inside and kept.index == 3 and kept.offset_mm == pytest.approx(0, abs=1e-3)
    top = match_slice(a, Plane.AXIAL, 19, b)  # 4 mm above it: more than half a 6 mm slice
    assert not top.inside and top.index == 3 and top.offset_mm == pytest.approx(-4, abs=1e-3)


def test_in_plane_directions_match_one_to_one(mr_pair) -> None:
    a, b = mr_pair
    # The copy has the same rows and columns: axial and sagittal slices meet their twins.
    for plane in (Plane.AXIAL, Plane.SAGITTAL):
        for index in (0, 100, geometry.slice_count(a, plane) - 1):
            match = match_slice(a, plane, index, b)
            assert match.index == index
            assert match.offset_mm == pytest.approx(0, abs=1e-3)


def test_linked_cursor_lands_on_the_same_patient_point(mr_pair) -> None:
    a, b = mr_pair
    spacing_b = np.asarray(b.spacing_mm)
    for ijk_a in [(128, 5, 60), (10, 0, 250), (200, 15, 128)]:
        ijk_b = linked_cursor(a, ijk_a, b, (0, 0, 0))
        gap = np.abs(b.lps_to_index(a.index_to_lps(ijk_a)) - np.asarray(ijk_b)) * spacing_b
        assert np.all(gap <= spacing_b / 2 + 1e-3), (ijk_a, ijk_b, gap)


def test_slice_centre_is_in_patient_mm(ct_pair) -> None:
    a, _ = ct_pair
    centre = slice_centre_lps(a, Plane.AXIAL, 3)
    assert centre[2] == pytest.approx(geometry.slice_position_mm(a, Plane.AXIAL, 3))


def test_unlinkable_series(mr_pair) -> None:
    a, _ = mr_pair
    flat = Volume(np.zeros((1, 8, 8), np.uint8), has_geometry=False)
    assert match_slice(a, Plane.AXIAL, 0, flat) is None
    assert linked_cursor(a, (1, 2, 3), flat, (0, 0, 0)) == (0, 0, 0)
    assert frame_note(a, flat) == "no patient geometry: not linked"
    # Tilted 30° about x: its axial slices are not parallel to A's.
    tilt = np.radians(30)
    rotation = np.array(
        [[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]]
    )
    tilted = Volume(np.zeros((4, 8, 8), np.int16), direction=rotation)
    assert match_slice(a, Plane.AXIAL, 100, tilted) is None


def test_frame_note_on_one_scan(mr_pair) -> None:
    a, b = mr_pair
    assert frame_note(a, b) == ""  # the copy keeps the scan's Frame of Reference
