"""Thick slabs on the bundled sample CT: the projection equals numpy's over the same slices,
in all three planes, and the slab is as thick in mm as asked."""

from __future__ import annotations

import numpy as np
import pytest

from birdview.core import geometry, io
from birdview.core.geometry import Plane
from birdview.core.resources import sample_ct_dir
from birdview.core.slab import Slab, slab_image, slab_indices, slab_slice_count, slab_value

_REDUCE = {"mip": np.max, "minip": np.min, "average": np.mean}
_NORMAL_SPACING = {Plane.SAGITTAL: 0, Plane.CORONAL: 1, Plane.AXIAL: 2}


@pytest.fixture(scope="module")
def ct():
    catalog = io.scan(str(sample_ct_dir()))
    return geometry.to_canonical(io.load(catalog.entries[0]))


@pytest.mark.parametrize("plane", list(Plane))
@pytest.mark.parametrize("mode", ["mip", "minip", "average"])
def test_projection_equals_numpy_over_the_slab(ct, plane, mode) -> None:
    index = geometry.slice_count(ct, plane) // 2
    slab = Slab(mode, 10.0)
    image = slab_image(ct, plane, index, slab)
    span = slab_indices(ct, plane, index, 10.0)
    # Independently: stack the plain slices the views would show and reduce them.
    stack = np.stack([geometry.extract_slice(ct, plane, n) for n in span]).astype(np.float64)
    expected = _REDUCE[mode](stack, axis=0)
    assert image.shape == geometry.extract_slice(ct, plane, index).shape
    np.testing.assert_allclose(image, expected, rtol=0, atol=1e-3 if mode == "average" else 0)
    # A MIP of a real CT differs from its middle slice (vessels and bone from the neighbours).
    assert not np.array_equal(image, geometry.extract_slice(ct, plane, index))


@pytest.mark.parametrize("plane", list(Plane))
@pytest.mark.parametrize("thickness_mm", [4.0, 10.0, 15.0])
def test_slab_is_as_thick_as_asked_and_centred(ct, plane, thickness_mm) -> None:
    spacing = ct.spacing_mm[_NORMAL_SPACING[plane]]
    index = geometry.slice_count(ct, plane) // 2
    span = slab_indices(ct, plane, index, thickness_mm)
    assert len(span) == slab_slice_count(ct, plane, thickness_mm)
    # Covered thickness within half a slice of what was asked (at least one slice).
    assert abs(len(span) * spacing - thickness_mm) <= spacing / 2 + 1e-9 or len(span) == 1
    centre_mm = np.mean([geometry.slice_position_mm(ct, plane, n) for n in span])
    here_mm = geometry.slice_position_mm(ct, plane, index)
    assert abs(centre_mm - here_mm) <= spacing / 2 + 1e-6


def test_sample_ct_axial_slab_in_slices(ct) -> None:
    # The sample CT has 2 mm slices: a 10 mm slab is 5 slices, two on each side.
    assert ct.spacing_mm[2] == pytest.approx(2.0)
    assert list(slab_indices(ct, Plane.AXIAL, 10, 10.0)) == [8, 9, 10, 11, 12]
    np.testing.assert_array_equal(
        slab_image(ct, Plane.AXIAL, 10, Slab("mip", 10.0)), ct.voxels[8:13].max(axis=0)
    )


def test_slab_at_the_end_is_clamped_not_shifted(ct) -> None:
    last = geometry.slice_count(ct, Plane.AXIAL) - 1
    assert list(slab_indices(ct, Plane.AXIAL, last, 10.0)) == [last - 2, last - 1, last]
    assert list(slab_indices(ct, Plane.AXIAL, 0, 10.0)) == [0, 1, 2]


def test_off_and_thin_slabs_show_the_plain_slice(ct) -> None:
    plain = geometry.extract_slice(ct, Plane.CORONAL, 100)
    np.testing.assert_array_equal(slab_image(ct, Plane.CORONAL, 100, Slab("off", 30.0)), plain)
    np.testing.assert_array_equal(slab_image(ct, Plane.CORONAL, 100, None), plain)
    thin = slab_image(ct, Plane.AXIAL, 5, Slab("mip", 0.5))  # under one 2 mm slice
    np.testing.assert_array_equal(thin, geometry.extract_slice(ct, Plane.AXIAL, 5))


def test_labels_and_bad_values() -> None:
    assert Slab("mip", 10).label() == "MIP 10.0 mm"
    assert Slab("minip", 7.5).label() == "MinIP 7.5 mm"
    assert Slab().label() == ""
    with pytest.raises(ValueError, match="slab mode 'max'"):
        Slab("max", 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="slab -1 mm thick"):
        Slab("mip", -1)
    with pytest.raises(ValueError, match="slab nan mm thick"):
        Slab("mip", float("nan"))


def test_index_outside_is_refused(ct) -> None:
    with pytest.raises(IndexError, match="axial slice 99"):
        slab_image(ct, Plane.AXIAL, 99, Slab("mip", 10))


@pytest.mark.parametrize("plane", list(Plane))
@pytest.mark.parametrize("mode", ["off", "mip", "minip", "average"])
def test_value_at_a_voxel_is_the_pixel_the_slab_image_shows_there(ct, plane, mode) -> None:
    """The value under the mouse on a slab view: the same number as the projected image's
    pixel at that voxel (at the volume's ends too, where the slab is thinner)."""
    slab = Slab(mode, 10.0)
    rng = np.random.default_rng(7)
    count = geometry.slice_count(ct, plane)
    for index in (0, count // 2, count - 1):
        image = slab_image(ct, plane, index, slab)
        rows, cols = image.shape[:2]
        for row, col in zip(rng.integers(0, rows, 20), rng.integers(0, cols, 20), strict=True):
            ijk = tuple(int(round(v)) for v in geometry.view_to_index(ct, plane, index, col, row))
            value = slab_value(ct, plane, ijk, slab)
            assert value == pytest.approx(float(image[row, col]), abs=1e-3), (ijk, index)


def test_value_of_a_mip_is_the_brightest_voxel_of_the_slab(ct) -> None:
    i, j, k = 256, 300, 10  # 2 mm slices: a 10 mm MIP spans k = 8..12
    line = ct.voxels[8:13, j, i]
    assert slab_value(ct, Plane.AXIAL, (i, j, k), Slab("mip", 10.0)) == line.max()
    assert slab_value(ct, Plane.AXIAL, (i, j, k), Slab("minip", 10.0)) == line.min()
    assert slab_value(ct, Plane.AXIAL, (i, j, k), None) == ct.voxels[k, j, i]
    with pytest.raises(IndexError, match="Unable to read voxel"):
        slab_value(ct, Plane.AXIAL, (i, j, ct.shape[0]), Slab("mip", 10.0))
