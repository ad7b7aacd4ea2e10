"""Radiology's reading order through each plane, and the numbers that identify a DICOM slice:
the display side of slice numbering, Qt-free."""

from __future__ import annotations

import numpy as np
import pytest

from birdview.core import geometry
from birdview.core.geometry import Plane
from birdview.core.io import load, scan
from birdview.core.volume import Volume
from tests.conftest import REPO, shared

SAMPLE_CT = REPO / "resources" / "samples" / "totalseg_ct"


@pytest.fixture(scope="module")
def ct_raw() -> Volume:
    return load(scan(SAMPLE_CT).entries[0])


def test_canonical_axial_reads_from_the_head_down(ct_raw) -> None:
    ct = geometry.to_canonical(ct_raw)
    assert geometry.reads_backwards(ct, Plane.AXIAL)  # k runs to the head
    assert not geometry.reads_backwards(ct, Plane.CORONAL)  # j runs front to back
    assert not geometry.reads_backwards(ct, Plane.SAGITTAL)  # i runs right to left
    first = geometry.reading_position(ct, Plane.AXIAL, 0)
    z = [geometry.slice_position_mm(ct, Plane.AXIAL, k) for k in range(ct.shape[0])]
    assert first == 19 and z[geometry.reading_position(ct, Plane.AXIAL, 0)] == max(z)
    assert geometry.reading_position(ct, Plane.CORONAL, 5) == 5


def test_reading_order_follows_the_direction_not_the_index() -> None:
    """A volume shown without `to_canonical` whose k already runs to the feet: nothing to flip;
    one whose j runs to the front pages coronal slices backwards."""
    feet_first = Volume(np.zeros((4, 3, 3), np.int16), direction=np.diag([1.0, -1.0, -1.0]))
    assert not geometry.reads_backwards(feet_first, Plane.AXIAL)
    assert geometry.reading_position(feet_first, Plane.AXIAL, 0) == 0
    assert geometry.reads_backwards(feet_first, Plane.CORONAL)
    assert geometry.reading_position(feet_first, Plane.CORONAL, 0) == 2


def test_reading_position_is_its_own_inverse(ct_raw) -> None:
    ct = geometry.to_canonical(ct_raw)
    for index in range(ct.shape[0]):
        place = geometry.reading_position(ct, Plane.AXIAL, index)
        assert geometry.reading_position(ct, Plane.AXIAL, place) == index


def test_pictures_and_cines_read_in_file_order() -> None:
    pages = Volume(np.zeros((3, 4, 4), np.uint8), has_geometry=False)
    assert not geometry.reads_backwards(pages, Plane.AXIAL)
    assert [geometry.reading_position(pages, Plane.AXIAL, k) for k in range(3)] == [0, 1, 2]


def test_dicom_slices_keep_instance_number_and_slice_location(ct_raw) -> None:
    import pydicom

    assert len(ct_raw.sources) == 20
    for source in ct_raw.sources:
        header = pydicom.dcmread(source.path, stop_before_pixels=True)
        assert source.instance_number == int(header.InstanceNumber)
        assert source.location_mm == pytest.approx(float(header.SliceLocation))
    ct = geometry.to_canonical(ct_raw)  # the numbers follow their slices when k is flipped
    assert geometry.slice_source(ct, Plane.AXIAL, 0).instance_number == 286
    assert geometry.slice_source(ct, Plane.AXIAL, 19).instance_number == 267


def test_reformatted_planes_have_no_source(ct_raw) -> None:
    ct = geometry.to_canonical(ct_raw)
    assert geometry.slice_source(ct, Plane.CORONAL, 10) is None
    assert geometry.slice_source(ct, Plane.SAGITTAL, 10) is None


def test_frames_of_a_multi_frame_file_claim_no_instance_number() -> None:
    path = shared("dicom_multiframe", "encapsulated", "multi-frame")
    volume = load(scan(path / "IM00001.fragmented_no_bot_jpeg_baseline.50.dcm").entries[0])
    assert len(volume.sources) == 8
    assert all(s.instance_number is None and s.location_mm is None for s in volume.sources)
    assert [s.frame for s in volume.sources] == list(range(8))


def test_slices_are_named_as_the_views_and_exports_name_them(ct_raw) -> None:
    ct = geometry.to_canonical(ct_raw)
    assert geometry.slice_label(ct, Plane.AXIAL, 10) == "Im 276 (10/20)"
    assert geometry.slice_label(ct, Plane.AXIAL, 10, compact=True) == "Im 276"
    assert geometry.slice_name(ct, Plane.AXIAL, 10) == "Im 276"
    assert geometry.slice_label(ct, Plane.AXIAL, 19) == "Im 267 (1/20)"  # the head first
    count = geometry.slice_count(ct, Plane.CORONAL)
    assert geometry.slice_label(ct, Plane.CORONAL, 3) == f"Slice 4/{count}"  # a reformat
    assert geometry.slice_name(ct, Plane.CORONAL, 3) == "slice 4"
    assert geometry.slice_span_name(ct, Plane.AXIAL, 2, 6) == "Im 280–284"
    assert geometry.slice_span_name(ct, Plane.CORONAL, 6, 2) == "slices 3–7"
