"""Plane views, canonical order and orientation letters, on the TotalSegmentator NIfTI files
(RAS, LAS and LPS on disk) and, where a property needs a controlled case, synthetic volumes."""

from __future__ import annotations

import json
import math
import os

import nibabel.testing
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from birdview.core.geometry import (
    Plane,
    acquisition_plane,
    extract_slice,
    index_to_view,
    orientation_letters,
    pixel_size_mm,
    slice_count,
    slice_position_mm,
    to_canonical,
    view_to_index,
)
from birdview.core.io.nifti import load_nifti, scan_nifti
from birdview.core.io.raster import load_raster, scan_raster
from birdview.core.volume import SliceSource, Volume
from tests.conftest import shared

ON_DISK = {  # file → orientation as NIfTI (RAS) names it
    "example_seg_dicom.nii.gz": "LAS",
    "example_ct_sm.nii.gz": "RAS",
    "example_mr_sm.nii.gz": "LPS",
}
RADIOLOGICAL = {
    Plane.AXIAL: {"left": "R", "right": "L", "top": "A", "bottom": "P"},
    Plane.CORONAL: {"left": "R", "right": "L", "top": "S", "bottom": "I"},
    Plane.SAGITTAL: {"left": "A", "right": "P", "top": "S", "bottom": "I"},
}


def _nifti(name: str) -> Volume:
    return load_nifti(scan_nifti(str(shared("totalseg", name))))


@pytest.fixture(scope="module")
def raw_volumes() -> dict[str, Volume]:
    return {name: _nifti(name) for name in ON_DISK}


def _rotation_x(degrees: float) -> np.ndarray:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _coronal_volume() -> Volume:
    """Slices acquired coronally, IOP 1,0,0/0,0,-1 (like the dcm4che wrist MR): i→L, j→I, k→P."""
    direction = np.column_stack([(1, 0, 0), (0, 0, -1), (0, 1, 0)])
    voxels = np.arange(4 * 6 * 5, dtype=np.int16).reshape(4, 6, 5)
    sources = tuple(SliceSource(f"MR{n:02d}.dcm") for n in range(4))
    return Volume(
        voxels,
        spacing_mm=(0.5, 0.7, 2.0),
        origin_lps_mm=(10, -6, 30),
        direction=direction,
        sources=sources,
    )


# -- canonical order on real files ----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ON_DISK))
def test_canonical_keeps_every_voxel_where_it_was(raw_volumes, name):
    raw = raw_volumes[name]
    canonical = to_canonical(raw)
    np.testing.assert_allclose(canonical.direction, np.eye(3), atol=1e-6)
    assert canonical.warnings == raw.warnings  # these files are not oblique
    rng = np.random.default_rng(0)
    k, j, i = (rng.integers(0, n, 200) for n in raw.shape)
    xyz = raw.index_to_lps(np.column_stack([i, j, k]))
    new_ijk = canonical.lps_to_index(xyz)
    np.testing.assert_allclose(new_ijk, np.round(new_ijk), atol=1e-4)  # lands on voxel centres
    ni, nj, nk = np.round(new_ijk).astype(int).T
    np.testing.assert_array_equal(canonical.voxels[nk, nj, ni], raw.voxels[k, j, i])
    np.testing.assert_allclose(canonical.index_to_lps(new_ijk), xyz, atol=1e-4)


@pytest.mark.parametrize("name", sorted(ON_DISK))
def test_canonical_is_idempotent_and_radiological(raw_volumes, name):
    canonical = to_canonical(raw_volumes[name])
    assert to_canonical(canonical) is canonical
    assert acquisition_plane(canonical) is Plane.AXIAL
    for plane in Plane:
        assert orientation_letters(canonical, plane) == RADIOLOGICAL[plane]


def test_letters_come_from_the_direction_not_assumed(raw_volumes):
    # Shown without reordering, a RAS file's axial view has the patient's left on screen left.
    raw = raw_volumes["example_ct_sm.nii.gz"]
    assert orientation_letters(raw, Plane.AXIAL) == {
        "left": "L",
        "right": "R",
        "top": "P",
        "bottom": "A",
    }
    las = raw_volumes["example_seg_dicom.nii.gz"]
    assert orientation_letters(las, Plane.AXIAL) == {
        "left": "R",
        "right": "L",
        "top": "P",
        "bottom": "A",
    }


def test_canonical_reverses_sources_with_k():
    voxels = np.arange(3 * 2 * 2).reshape(3, 2, 2)
    sources = tuple(SliceSource("a.nii", frame=n) for n in range(3))
    volume = Volume(voxels, direction=np.diag([1.0, 1.0, -1.0]), sources=sources)
    canonical = to_canonical(volume)
    assert [s.frame for s in canonical.sources] == [2, 1, 0]
    np.testing.assert_array_equal(canonical.voxels, voxels[::-1])
    assert canonical.origin_lps_mm == (0.0, 0.0, -2.0)


def test_canonical_of_a_coronal_acquisition():
    raw = _coronal_volume()
    assert acquisition_plane(raw) is Plane.CORONAL
    canonical = to_canonical(raw)
    assert canonical.shape == (6, 4, 5)
    np.testing.assert_allclose(canonical.direction, np.eye(3), atol=1e-12)
    assert canonical.spacing_mm == (0.5, 2.0, 0.7)
    # The acquired slices now run along j; each coronal index keeps its file.
    assert canonical.source_axis == 1
    assert [canonical.source_at((0, j, 0)) for j in range(4)] == list(raw.sources)
    assert acquisition_plane(canonical) is Plane.CORONAL
    # Each coronal view is exactly the acquired slice, as the scanner showed it.
    for index in range(4):
        np.testing.assert_array_equal(
            extract_slice(canonical, Plane.CORONAL, index), raw.voxels[index]
        )
    # Shown as stored, the acquired image is coronal, and its letters say so.
    assert orientation_letters(raw, Plane.AXIAL) == RADIOLOGICAL[Plane.CORONAL]


def test_canonical_keeps_colour_axis():
    voxels = np.random.default_rng(1).integers(0, 255, (2, 3, 4, 3), dtype=np.uint8)
    volume = Volume(voxels, direction=np.column_stack([(-1, 0, 0), (0, 0, 1), (0, 1, 0)]))
    canonical = to_canonical(volume)
    assert canonical.voxels.shape == (3, 2, 4, 3)
    assert extract_slice(canonical, Plane.AXIAL, 0).shape == (2, 4, 3)
    np.testing.assert_array_equal(canonical.voxels[0, 1, 0], voxels[1, 0, 3])


def test_oblique_volume_warns_once(raw_volumes):
    volume = Volume(np.zeros((3, 4, 5)), direction=_rotation_x(10))
    canonical = to_canonical(volume)
    (warning,) = canonical.warnings
    assert warning == "oblique orientation (10.0° from axial); shown on the nearest plane"
    assert to_canonical(canonical).warnings == (warning,)
    assert orientation_letters(canonical, Plane.SAGITTAL)["top"] == "SA"
    slight = Volume(np.zeros((3, 4, 5)), direction=_rotation_x(0.5))
    assert to_canonical(slight).warnings == ()
    assert orientation_letters(slight, Plane.SAGITTAL)["top"] == "S"


def test_oblique_real_file_warns():
    path = os.path.join(nibabel.testing.data_path, "example4d.nii.gz")
    canonical = to_canonical(load_nifti(scan_nifti(path)))
    assert any(
        w.startswith("oblique orientation (9.") and "from axial" in w for w in canonical.warnings
    )


def test_volumes_without_geometry_are_left_alone():
    picture = load_raster(
        scan_raster(str(shared("sammed2d_demo", "data_demo", "images", "s0619_32.png")))
    )
    assert to_canonical(picture) is picture
    assert orientation_letters(picture, Plane.AXIAL) is None
    assert acquisition_plane(picture) is Plane.AXIAL
    assert extract_slice(picture, Plane.AXIAL, 0).shape == (155, 225)


# -- slices ---------------------------------------------------------------------------------


def test_slices_are_read_only_views(raw_volumes):
    canonical = to_canonical(raw_volumes["example_seg_dicom.nii.gz"])
    expected = {
        Plane.AXIAL: (20, (512, 512)),
        Plane.CORONAL: (512, (20, 512)),
        Plane.SAGITTAL: (512, (20, 512)),
    }
    for plane, (count, shape) in expected.items():
        assert slice_count(canonical, plane) == count
        image = extract_slice(canonical, plane, count // 2)
        assert image.shape == shape
        assert np.shares_memory(image, canonical.voxels) and not image.flags.writeable
    with pytest.raises(IndexError, match="axial slice 20 as the volume has slices 0..19"):
        extract_slice(canonical, Plane.AXIAL, 20)
    with pytest.raises(IndexError):
        extract_slice(canonical, Plane.SAGITTAL, -1)


def test_pixel_size_and_slice_position(raw_volumes):
    canonical = to_canonical(raw_volumes["example_seg_dicom.nii.gz"])
    assert pixel_size_mm(canonical, Plane.AXIAL) == pytest.approx((0.9765625, 0.9765625))
    assert pixel_size_mm(canonical, Plane.CORONAL) == pytest.approx((0.9765625, 2.0))
    assert pixel_size_mm(canonical, Plane.SAGITTAL) == pytest.approx((0.9765625, 2.0))
    # README: k = 0 is the slice at z = -804.5 mm, and the series ends at -766.5 mm.
    assert slice_position_mm(canonical, Plane.AXIAL, 0) == pytest.approx(-804.5, abs=0.01)
    assert slice_position_mm(canonical, Plane.AXIAL, 19) == pytest.approx(-766.5, abs=0.01)
    for plane, axis in ((Plane.CORONAL, 1), (Plane.SAGITTAL, 0)):
        first, second = (slice_position_mm(canonical, plane, n) for n in (0, 1))
        assert second - first == pytest.approx(0.9765625)
        assert first == pytest.approx(canonical.origin_lps_mm[axis])


@settings(max_examples=150, deadline=None)
@given(
    plane=st.sampled_from(list(Plane)),
    fractions=st.tuples(*[st.floats(0, 1)] * 3),
)
def test_view_and_index_round_trip(plane, fractions):
    volume = to_canonical(_coronal_volume())  # distinct values everywhere
    count = slice_count(volume, plane)
    rows, cols = extract_slice(volume, plane, 0).shape
    index = min(int(fractions[0] * count), count - 1)
    col, row = fractions[1] * (cols - 1), fractions[2] * (rows - 1)
    ijk = view_to_index(volume, plane, index, col, row)
    assert index_to_view(volume, plane, ijk) == pytest.approx((index, col, row))
    # The pixel shown at (col, row) is the voxel view_to_index names.
    c, r = round(col), round(row)
    i, j, k = (int(v) for v in view_to_index(volume, plane, index, c, r))
    assert extract_slice(volume, plane, index)[r, c] == volume.voxels[k, j, i]


# -- anatomy: can the viewer put the liver on the wrong side? ---------------------------------


@pytest.fixture(scope="module")
def ct_and_labels():
    classes = json.loads(shared("totalseg", "classes.json").read_text())
    names = {int(k): v for k, v in classes["ct_total"]["labels"].items()}
    seg = to_canonical(_nifti("example_seg.nii.gz"))
    return to_canonical(_nifti("example_ct_sm.nii.gz")), seg, names


def _centroid_ijk(labels: np.ndarray, values) -> np.ndarray:
    k, j, i = np.nonzero(np.isin(labels, list(values)))
    return np.array([i.mean(), j.mean(), k.mean()])


def test_liver_on_patient_right_and_screen_left(ct_and_labels):
    ct, seg, names = ct_and_labels
    values = {n: v for v, n in names.items()}
    labels = np.asarray(seg.voxels)
    liver = _centroid_ijk(labels, [values["liver"]])
    spleen = _centroid_ijk(labels, [values["spleen"]])
    assert seg.index_to_lps(liver)[0] < seg.index_to_lps(spleen)[0]  # right is -x in LPS
    assert 0 < np.median(np.asarray(ct.voxels)[labels == values["liver"]]) < 150  # soft tissue
    k = int(round(liver[2]))
    image = extract_slice(seg, Plane.AXIAL, k)
    liver_cols = np.nonzero(image == values["liver"])[1]
    spleen_cols = np.nonzero(image == values["spleen"])[1]
    assert liver_cols.mean() < image.shape[1] / 2 < spleen_cols.mean()
    assert orientation_letters(seg, Plane.AXIAL)["left"] == "R"


def test_spine_posterior_to_aorta_and_lower_on_screen(ct_and_labels):
    _, seg, names = ct_and_labels
    labels = np.asarray(seg.voxels)
    vertebrae = [v for v, n in names.items() if n.startswith("vertebrae")]
    aorta = [v for v, n in names.items() if n == "aorta"]
    spine_c, aorta_c = _centroid_ijk(labels, vertebrae), _centroid_ijk(labels, aorta)
    assert seg.index_to_lps(spine_c)[1] > seg.index_to_lps(aorta_c)[1]  # posterior is +y
    image = extract_slice(seg, Plane.AXIAL, int(round(aorta_c[2])))
    spine_rows = np.nonzero(np.isin(image, vertebrae))[0]
    aorta_rows = np.nonzero(np.isin(image, aorta))[0]
    assert spine_rows.size and aorta_rows.size
    assert spine_rows.mean() > aorta_rows.mean()
    assert orientation_letters(seg, Plane.AXIAL)["bottom"] == "P"


def test_head_is_up_in_sagittal_view(ct_and_labels):
    _, seg, names = ct_and_labels
    values = {n: v for v, n in names.items()}
    labels = np.asarray(seg.voxels)
    upper, lower = values["vertebrae_T12"], values["vertebrae_L1"]
    column = int(round(_centroid_ijk(labels, [upper, lower])[0]))
    image = extract_slice(seg, Plane.SAGITTAL, column)
    assert np.nonzero(image == upper)[0].mean() < np.nonzero(image == lower)[0].mean()
    assert orientation_letters(seg, Plane.SAGITTAL)["top"] == "S"
