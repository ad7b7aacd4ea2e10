"""`Box`: validation, clamping, and pixel ↔ voxel ↔ patient mm on real series.

The DICOM headers are the reference: a box corner at the centre of a displayed pixel must land
on that pixel's position as the file's Image Position / Orientation (Patient) place it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from birdview.core.box import Box
from birdview.core.geometry import Plane, extract_slice, slice_count, to_canonical
from birdview.core.io import load, scan
from birdview.core.volume import Volume
from tests.conftest import shared


def _canonical(*parts: str) -> Volume:
    catalog = scan(shared(*parts))
    assert len(catalog.entries) == 1
    return to_canonical(load(catalog.entries[0]))


@pytest.fixture(scope="module")
def wrist_mr() -> Volume:
    """16 coronal slices, IOP 1,0,0/0,0,-1, 0.234 mm pixels, 2 mm apart along y."""
    return _canonical("dcm4che_mr")


@pytest.fixture(scope="module")
def ct() -> Volume:
    """20 axial slices, 0.977 mm pixels, 2 mm apart."""
    return _canonical("totalseg", "example_ct_dicom")


def _header(volume: Volume, ijk: tuple[int, int, int]) -> pydicom.Dataset:
    source = volume.source_at(ijk)
    assert source is not None
    return pydicom.dcmread(source.path, stop_before_pixels=True)


# -- the dataclass --------------------------------------------------------------------------


def test_box_sizes_and_fields():
    box = Box(Plane.AXIAL, 3, 10, 20, 40, 30, label="liver", score=0.9, flags=("clamped",))
    assert (box.width_px, box.height_px, box.area_px) == (30.0, 10.0, 300.0)
    assert box.edges_px == (10.0, 20.0, 40.0, 30.0)
    assert Box("coronal", 0, 0, 0, 1, 1).plane is Plane.CORONAL
    with pytest.raises(dataclasses.FrozenInstanceError):
        box.x1_px = 0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("edges", "match"),
    [
        ((5, 0, 5, 1), "x1 < x2"),
        ((0, 2, 1, 1), "x1 < x2 and y1 < y2"),
        ((0, 0, float("nan"), 1), "not all finite"),
        ((0, 0, float("inf"), 1), "not all finite"),
    ],
)
def test_box_rejects_bad_edges(edges, match):
    with pytest.raises(ValueError, match=match):
        Box(Plane.AXIAL, 0, *edges)


def test_box_rejects_bad_slice_index():
    with pytest.raises(ValueError, match="slice index -1 is negative"):
        Box(Plane.AXIAL, -1, 0, 0, 1, 1)
    with pytest.raises(TypeError, match="not an integer"):
        Box(Plane.AXIAL, 1.5, 0, 0, 1, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Box("oblique", 0, 0, 0, 1, 1)  # type: ignore[arg-type]


def test_clamped_clips_to_the_image_and_flags_once():
    box = Box(Plane.AXIAL, 0, -5, 10, 120, 50, flags=("swapped",))
    clamped = box.clamped(100, 40)
    assert clamped.edges_px == (0.0, 10.0, 100.0, 40.0)
    assert clamped.flags == ("swapped", "clamped")
    assert clamped.clamped(100, 40) is clamped
    inside = Box(Plane.AXIAL, 0, 1, 1, 2, 2)
    assert inside.clamped(10, 10) is inside
    with pytest.raises(ValueError, match="lies outside the 10 × 10 image"):
        Box(Plane.AXIAL, 0, 20, 20, 30, 30).clamped(10, 10)


# -- coronal MR: pixel edges against the DICOM header ----------------------------------------


def test_coronal_box_lies_on_its_slice(wrist_mr):
    """y of every corner is the slice's Image Position (Patient) y; the extent along x and z
    is the size in pixels times the pixel spacing."""
    assert slice_count(wrist_mr, Plane.CORONAL) == 16
    for slice_index in (0, 7, 15):
        box = Box(Plane.CORONAL, slice_index, 10, 20, 110, 70)
        corners_mm = box.to_lps_mm(wrist_mr)
        header = _header(wrist_mr, (0, slice_index, 0))
        np.testing.assert_allclose(corners_mm[:, 1], float(header.ImagePositionPatient[1]))
        row_mm, col_mm = (float(v) for v in header.PixelSpacing)
        assert np.ptp(corners_mm[:, 0]) == pytest.approx(100 * col_mm)
        assert np.ptp(corners_mm[:, 2]) == pytest.approx(50 * row_mm)
        assert box.size_mm(wrist_mr) == pytest.approx((100 * col_mm, 50 * row_mm))


@pytest.mark.parametrize(("col", "row"), [(0, 0), (37, 200), (255, 255)])
def test_coronal_pixel_centre_is_where_the_header_puts_it(wrist_mr, col, row):
    """A corner at the centre of displayed pixel (col, row) = IPP + col·Δc·X + row·Δr·Y."""
    slice_index = 4
    box = Box(Plane.CORONAL, slice_index, col + 0.5, row + 0.5, col + 2, row + 2)
    header = _header(wrist_mr, (0, slice_index, 0))
    position = np.array([float(v) for v in header.ImagePositionPatient])
    iop = np.array([float(v) for v in header.ImageOrientationPatient])
    row_mm, col_mm = (float(v) for v in header.PixelSpacing)
    expected = position + col * col_mm * iop[:3] + row * row_mm * iop[3:]
    np.testing.assert_allclose(box.to_lps_mm(wrist_mr)[0], expected, atol=1e-3)
    # and that pixel, as displayed, is the file's pixel at (row, col)
    displayed = extract_slice(wrist_mr, Plane.CORONAL, slice_index)
    stored = pydicom.dcmread(wrist_mr.source_at((0, slice_index, 0)).path).pixel_array
    assert displayed[row, col] == stored[row, col]


def test_voxel_corners_are_half_a_pixel_outside_the_centres(wrist_mr):
    box = Box(Plane.CORONAL, 3, 2, 5, 3, 6)  # exactly one pixel: column 2, row 5
    top_k = wrist_mr.shape[0] - 1
    expected = [
        (1.5, 3, top_k - 4.5),
        (2.5, 3, top_k - 4.5),
        (2.5, 3, top_k - 5.5),
        (1.5, 3, top_k - 5.5),
    ]
    np.testing.assert_allclose(box.to_voxel_corners(wrist_mr), expected)


# -- axial and sagittal CT ------------------------------------------------------------------


def test_axial_ct_box_on_its_slice(ct):
    box = Box(Plane.AXIAL, 11, 100, 150, 300, 260)
    corners_mm = box.to_lps_mm(ct)
    header = _header(ct, (0, 0, 11))
    np.testing.assert_allclose(corners_mm[:, 2], float(header.ImagePositionPatient[2]))
    row_mm, col_mm = (float(v) for v in header.PixelSpacing)
    assert box.size_mm(ct) == pytest.approx((200 * col_mm, 110 * row_mm))
    position = np.array([float(v) for v in header.ImagePositionPatient])
    # top-left corner: the outer edge of pixel (100, 150), half a pixel before its centre
    expected = position + np.array([99.5 * col_mm, 149.5 * row_mm, 0])
    np.testing.assert_allclose(corners_mm[0], expected, atol=1e-3)


def test_sagittal_ct_box_spans_y_and_z(ct):
    box = Box(Plane.SAGITTAL, 256, 100, 4, 356, 14)
    corners_mm = box.to_lps_mm(ct)
    header = _header(ct, (256, 0, 0))
    row_mm, col_mm = (float(v) for v in header.PixelSpacing)
    expected_x = float(header.ImagePositionPatient[0]) + 256 * col_mm
    np.testing.assert_allclose(corners_mm[:, 0], expected_x, atol=1e-3)
    assert np.ptp(corners_mm[:, 1]) == pytest.approx(256 * row_mm)
    assert np.ptp(corners_mm[:, 2]) == pytest.approx(10 * ct.spacing_mm[2])
    assert corners_mm[0, 2] > corners_mm[3, 2]  # the top of the screen is superior


@settings(max_examples=60, deadline=None)
@given(
    plane=st.sampled_from(list(Plane)),
    fractions=st.tuples(*[st.floats(0, 1) for _ in range(4)]),
    slice_fraction=st.floats(0, 1),
)
def test_mm_round_trip(ct, plane, fractions, slice_fraction):
    rows, cols = extract_slice(ct, plane, 0).shape[:2]
    a, b, c, d = fractions
    x1, x2 = sorted((a * cols, b * cols))
    y1, y2 = sorted((c * rows, d * rows))
    if x2 - x1 < 1e-3 or y2 - y1 < 1e-3:
        return
    slice_index = round(slice_fraction * (slice_count(ct, plane) - 1))
    box = Box(plane, slice_index, x1, y1, x2, y2, label="liver", score=0.5)
    again = Box.from_lps_mm(ct, plane, box.to_lps_mm(ct), label="liver", score=0.5)
    assert again.slice_index == slice_index
    np.testing.assert_allclose(again.edges_px, box.edges_px, atol=1e-6)
    assert Box.from_voxel(ct, plane, box.to_voxel_corners(ct)).edges_px == pytest.approx(
        box.edges_px
    )


def test_from_lps_mm_of_one_point_has_no_area(ct):
    with pytest.raises(ValueError, match="x1 < x2"):
        Box.from_lps_mm(ct, Plane.AXIAL, [ct.index_to_lps((3, 4, 5))])
