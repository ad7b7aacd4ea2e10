"""Mask numbers on real data: volumes in mL against the label map's own NIfTI header, axial
diameters of shapes whose size is known, mean/SD inside a mask, and the packed transport."""

from __future__ import annotations

import json
import math

import nibabel as nib
import numpy as np
import pytest

from birdview.core.geometry import Plane, extract_slice, to_canonical
from birdview.core.io import load, scan
from birdview.core.masks import (
    PackedMask,
    axial_diameters_mm,
    hu_stats,
    mask_bbox,
    mask_volume_ml,
    measure,
    put_slice,
    voxel_volume_ml,
)
from birdview.core.resources import sample_ct_dir
from birdview.core.volume import Volume

LABELS_NII = sample_ct_dir().parent / "totalseg_ct_labels" / "example_seg_dicom.nii.gz"


@pytest.fixture(scope="module")
def ct_and_labels() -> tuple[Volume, Volume]:
    ct = to_canonical(load(scan(sample_ct_dir()).entries[0]))
    labels = to_canonical(load(scan(LABELS_NII).entries[0]))
    return ct, labels


@pytest.fixture(scope="module")
def header_volumes_ml() -> dict[int, float]:
    """Each label's volume straight from the NIfTI file with nibabel: voxel count ×
    |det(affine[:3, :3])| / 1000, independent of BirdView's readers and geometry."""
    image = nib.load(LABELS_NII)
    data = np.asarray(image.dataobj)
    voxel_ml = abs(float(np.linalg.det(image.affine[:3, :3]))) / 1000.0
    values, counts = np.unique(data, return_counts=True)
    return {int(v): int(n) * voxel_ml for v, n in zip(values, counts, strict=True) if v}


def test_a_mask_equal_to_a_label_has_the_labels_volume(ct_and_labels, header_volumes_ml):
    ct, labels = ct_and_labels
    assert len(header_volumes_ml) > 20
    for value, reference_ml in header_volumes_ml.items():
        # Measured on the CT's grid (read from DICOM), not the label map's own.
        got = mask_volume_ml(np.asarray(labels.voxels) == value, ct)
        assert abs(got - reference_ml) / reference_ml < 1e-3, (value, got, reference_ml)


def test_the_voxel_volume_follows_the_grid_not_only_the_spacing():
    voxels = np.zeros((4, 5, 6), np.int16)
    angle = math.radians(30)
    rotation = np.array(
        [[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]]
    )
    rotated = Volume(voxels, spacing_mm=(0.5, 0.8, 2.5), direction=rotation)
    assert voxel_volume_ml(rotated) == pytest.approx(0.5 * 0.8 * 2.5 / 1000)
    sheared = Volume(
        voxels, spacing_mm=(1.0, 1.0, 2.0), direction=[[1, 0, 0.5], [0, 1, 0], [0, 0, 1]]
    )
    # A gantry tilt shears the grid; the prism's volume is still base × height.
    assert voxel_volume_ml(sheared) == pytest.approx(2.0 / 1000)


def _ellipse(shape, spacing, centre_mm, a_mm, b_mm, angle_deg=0.0) -> np.ndarray:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    x = (cols + 0.5) * spacing[0] - centre_mm[0]
    y = (rows + 0.5) * spacing[1] - centre_mm[1]
    t = math.radians(angle_deg)
    u = x * math.cos(t) + y * math.sin(t)
    v = -x * math.sin(t) + y * math.cos(t)
    return (u / a_mm) ** 2 + (v / b_mm) ** 2 <= 1.0


@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0])
def test_axial_diameters_of_an_ellipse_on_anisotropic_pixels(angle):
    spacing = (0.7, 1.3, 3.0)
    mask = np.zeros((5, 120, 160), bool)
    mask[1] = _ellipse((120, 160), spacing, (56.0, 78.0), 15.0, 6.0, angle)  # smaller slice
    mask[3] = _ellipse((120, 160), spacing, (56.0, 78.0), 30.0, 12.0, angle)
    volume = Volume(np.zeros(mask.shape, np.int16), spacing_mm=spacing)
    found = axial_diameters_mm(mask, volume)
    assert found is not None and found.slice_index == 3
    pixel = math.hypot(spacing[0], spacing[1])
    assert found.long_mm == pytest.approx(60.0, abs=pixel)
    assert found.short_mm == pytest.approx(24.0, abs=pixel)


def test_axial_diameters_of_one_pixel_and_of_nothing():
    volume = Volume(np.zeros((2, 4, 4), np.int16), spacing_mm=(0.5, 2.0, 1.0))
    mask = np.zeros(volume.shape, bool)
    assert axial_diameters_mm(mask, volume) is None
    mask[1, 2, 3] = True
    found = axial_diameters_mm(mask, volume)
    assert found.long_mm == pytest.approx(math.hypot(0.5, 2.0))
    assert found.short_mm > 0


def test_the_long_axis_of_real_organs_lies_between_their_box_side_and_diagonal(ct_and_labels):
    ct, labels = ct_and_labels
    names = _label_names()
    for value in (1, 5, 6):  # spleen, liver, stomach
        mask = np.asarray(labels.voxels) == value
        found = axial_diameters_mm(mask, ct)
        x1, y1, x2, y2 = mask_bbox(mask[found.slice_index])
        width, height = (x2 - x1) * ct.spacing_mm[0], (y2 - y1) * ct.spacing_mm[1]
        assert max(width, height) <= found.long_mm + 1e-6, names[value]
        assert found.long_mm <= math.hypot(width, height) + 1e-6, names[value]
        assert 0 < found.short_mm <= found.long_mm, names[value]


def test_the_long_axis_of_every_real_label_slice_equals_scipys_hull(ct_and_labels):
    """The long axis is the widest pair of pixel corners: BirdView builds its hull from a few
    row-end corners; scipy's Qhull from every corner of every pixel must give the same."""
    from scipy.spatial import ConvexHull

    ct, labels = ct_and_labels
    spacing = np.asarray(ct.spacing_mm[:2], dtype=float)
    data = np.asarray(labels.voxels)
    checked = 0
    for value in np.unique(data[data > 0]):
        for k in np.flatnonzero((data == value).any(axis=(1, 2))):
            rows, cols = np.nonzero(data[k] == value)
            corners = (
                np.concatenate(
                    [np.stack([cols + dx, rows + dy], axis=1) for dx in (0, 1) for dy in (0, 1)]
                )
                * spacing
            )
            if len(np.unique(corners[:, 0])) < 2 or len(np.unique(corners[:, 1])) < 2:
                continue
            hull = corners[ConvexHull(corners).vertices]
            widest = np.hypot(*(hull[:, None, :] - hull[None, :, :]).transpose(2, 0, 1)).max()
            mask = np.zeros(data.shape, bool)
            mask[k] = data[k] == value
            assert axial_diameters_mm(mask, ct).long_mm == pytest.approx(widest, rel=1e-9)
            checked += 1
    assert checked > 100


def test_hu_inside_real_labels_is_tissue_like(ct_and_labels):
    ct, labels = ct_and_labels
    bone_mean, _, n = hu_stats(np.isin(labels.voxels, (32, 33)), ct)  # vertebrae T11/T12
    assert n > 0 and bone_mean > 150
    spleen_mean, spleen_sd, _ = hu_stats(np.asarray(labels.voxels) == 1, ct)
    assert 0 < spleen_mean < 120 and 0 < spleen_sd < 100


def test_mean_and_sd_inside_a_mask_ignore_what_is_outside():
    rng = np.random.default_rng(3)
    voxels = rng.normal(-800.0, 5.0, (3, 64, 64))
    mask = np.zeros(voxels.shape, bool)
    mask[1, 10:50, 10:50] = True
    voxels[mask] = rng.normal(50.0, 10.0, int(mask.sum()))
    mean, sd, n = hu_stats(mask, Volume(voxels.astype(np.float32), modality="CT"))
    assert n == 1600
    assert mean == pytest.approx(50.0, abs=1.0) and sd == pytest.approx(10.0, abs=0.6)
    assert all(math.isnan(v) for v in hu_stats(np.zeros_like(mask), Volume(voxels))[:2])


def test_measure_refuses_a_mask_off_the_grid(ct_and_labels):
    ct, _ = ct_and_labels
    with pytest.raises(ValueError, match=r"shape \(20, 512, 511\).*must lie on its volume"):
        measure(np.zeros((20, 512, 511), bool), ct)


def test_measure_puts_it_together(ct_and_labels, header_volumes_ml):
    ct, labels = ct_and_labels
    got = measure(np.asarray(labels.voxels) == 5, ct)
    assert got.volume_ml == pytest.approx(header_volumes_ml[5], rel=1e-3)
    assert got.diameters.long_mm > 50 and -50 < got.mean < 200


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (512, 512), (181, 258)])
def test_packed_masks_round_trip(shape):
    mask = np.random.default_rng(1).random(shape) > 0.5
    packed = PackedMask.pack(mask)
    assert len(packed.bits) == (mask.size + 7) // 8
    np.testing.assert_array_equal(packed.unpack(), mask)
    assert PackedMask.pack(np.zeros(shape)).empty
    assert packed.empty == (not mask.any())


def test_a_damaged_packed_mask_says_so():
    with pytest.raises(ValueError, match=r"Unable to unpack a \(10, 10\) mask from 3 bytes"):
        PackedMask((10, 10), b"abc").unpack()
    with pytest.raises(ValueError, match="expected 2D"):
        PackedMask.pack(np.zeros((2, 2, 2)))


@pytest.mark.parametrize("plane", list(Plane))
def test_a_slice_mask_lands_where_the_slice_is_shown(plane):
    shape = (6, 7, 8)
    index = 2
    shown = extract_slice(Volume(np.zeros(shape, np.uint8)), plane, index)
    mask2d = np.random.default_rng(2).random(shown.shape) > 0.5
    mask3d = np.zeros(shape, bool)
    put_slice(mask3d, plane, index, mask2d)
    np.testing.assert_array_equal(
        extract_slice(Volume(mask3d.astype(np.uint8)), plane, index), mask2d
    )
    assert int(mask3d.sum()) == int(mask2d.sum())
    with pytest.raises(ValueError, match="Unable to place"):
        put_slice(mask3d, plane, index, mask2d[:-1])


def test_mask_bbox_uses_pixel_edges():
    mask = np.zeros((10, 10), bool)
    mask[2:5, 3:9] = True
    assert mask_bbox(mask) == (3.0, 2.0, 9.0, 5.0)
    assert mask_bbox(np.zeros((4, 4), bool)) is None


def _label_names() -> dict[int, str]:
    classes = json.loads((LABELS_NII.parent / "classes.json").read_text())
    return {int(k): v for k, v in classes["ct_total"]["labels"].items()}
