"""Dice and IoU of masks against the bundled label map of the sample CT, checked against
counts made independently with numpy on nibabel's reading of the label file."""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pytest

from birdview.core.box import Box
from birdview.core.geometry import Plane, extract_slice, to_canonical
from birdview.core.io import load, scan
from birdview.core.labels_io import bundled_labels_path, open_labels
from birdview.core.mask_compare import box_agreement, compare_mask, dice, iou, slice_of
from birdview.core.masks import mask_volume_ml
from birdview.core.resources import sample_ct_dir

LIVER = 5  # TotalSegmentator's value for the liver (the bundled classes.json)


@pytest.fixture(scope="module")
def study():
    ct = to_canonical(load(scan(sample_ct_dir()).entries[0]))
    return ct, open_labels(bundled_labels_path(ct), ct)


@pytest.fixture(scope="module")
def nifti_liver() -> tuple[np.ndarray, float]:
    """The liver straight from the file with nibabel (its own axis order) and its mL."""
    image = nib.load(bundled_labels_path(to_canonical(load(scan(sample_ct_dir()).entries[0]))))
    data = np.asarray(image.dataobj) == LIVER
    return data, int(data.sum()) * abs(float(np.linalg.det(image.affine[:3, :3]))) / 1000.0


def test_a_mask_equal_to_the_liver_has_dice_one_and_its_volume(study, nifti_liver):
    ct, labels = study
    mask = np.asarray(labels.volume.voxels) == LIVER
    found = compare_mask(mask, "Liver", labels, ct.identity)
    assert found.label.name == "liver" and found.matched_by == "name"
    assert found.volume.dice == 1.0 and found.volume.iou == 1.0
    assert all(o.dice == 1.0 for _, o in found.slices)
    assert len(found.slices) == int(nifti_liver[0].any(axis=(0, 1)).sum())
    got = mask_volume_ml(mask, ct)
    assert abs(got - nifti_liver[1]) / nifti_liver[1] < 1e-3


def test_a_shifted_mask_gives_numpys_dice_in_3d_and_per_slice(study, nifti_liver):
    ct, labels = study
    # Shift the file's liver 7 voxels along its first axis, in nibabel's own array, then
    # bring it to the study's order the way the file's affine says (i as is, j reversed).
    raw = nifti_liver[0]
    shifted_raw = np.zeros_like(raw)
    shifted_raw[7:] = raw[:-7]
    inter = int((raw & shifted_raw).sum())
    expected_dice = 2 * inter / (int(raw.sum()) + int(shifted_raw.sum()))
    expected_iou = inter / int((raw | shifted_raw).sum())
    mask = np.transpose(shifted_raw[:, ::-1, :], (2, 1, 0))
    found = compare_mask(mask, "liver", labels, ct.identity)
    assert found.volume.dice == pytest.approx(expected_dice, abs=1e-12)
    assert found.volume.iou == pytest.approx(expected_iou, abs=1e-12)
    assert 0.5 < found.volume.dice < 1.0
    for k, got in found.slices:  # slice k of the study is the file's slice k
        a, b = raw[:, :, k], shifted_raw[:, :, k]
        total = int(a.sum()) + int(b.sum())
        assert got.dice == pytest.approx(2 * int((a & b).sum()) / total, abs=1e-12)
        assert got.iou == pytest.approx(int((a & b).sum()) / int((a | b).sum()), abs=1e-12)


def test_an_unnamed_mask_is_compared_with_the_label_it_overlaps_most(study):
    ct, labels = study
    mask = np.asarray(labels.volume.voxels) == LIVER
    mask[:, :, :250] = False  # half a liver, named by the engine, not by anatomy
    found = compare_mask(mask, "segmented", labels, ct.identity)
    assert (found.label.name, found.matched_by) == ("liver", "overlap")
    assert 0 < found.volume.dice < 1


def test_nothing_to_compare_and_another_study_are_said(study):
    ct, labels = study
    empty = np.zeros(ct.shape, bool)
    assert compare_mask(empty, "segmented", labels, ct.identity) is None
    with pytest.raises(ValueError, match="different studies"):
        compare_mask(empty, "liver", labels, "content-sha256:" + "0" * 64)
    assert math.isnan(dice(empty, empty)) and math.isnan(iou(empty, empty))


@pytest.mark.parametrize("plane", list(Plane))
def test_slices_of_a_mask_are_the_slices_the_viewer_shows(study, plane):
    _, labels = study
    index = {Plane.AXIAL: 9, Plane.CORONAL: 300, Plane.SAGITTAL: 150}[plane]
    shown = extract_slice(labels.volume, plane, index)
    np.testing.assert_array_equal(slice_of(np.asarray(labels.volume.voxels), plane, index), shown)


def test_boxes_of_the_model_the_mask_and_the_reference(study):
    ct, labels = study
    reference = slice_of(np.asarray(labels.volume.voxels) == LIVER, Plane.AXIAL, 10)
    rows, cols = np.nonzero(reference)
    mask = np.zeros_like(reference)
    mask[rows.min() : rows.max() + 1, cols.min() : (cols.min() + cols.max()) // 2] = True
    model = Box(Plane.AXIAL, 10, cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
    found = box_agreement(model, mask, reference, Plane.AXIAL, 10)
    assert found.iou("model", "reference") == pytest.approx(1.0)
    width = cols.max() + 1 - cols.min()
    half = (cols.min() + cols.max()) // 2 - cols.min()
    assert found.iou("mask", "reference") == pytest.approx(half / width)
    assert math.isnan(box_agreement(None, mask, reference, Plane.AXIAL, 10).iou("model", "mask"))
