"""The 3D extent of a structure found slice by slice, on the real TotalSegmentator CT and its
label map: the sweep's summary must match what the labels say."""

from __future__ import annotations

import numpy as np
import pytest

from birdview.core.box import Box
from birdview.core.extent import extent_of, projection_on
from birdview.core.geometry import Plane, extract_slice, slice_count, to_canonical
from birdview.core.io import load, scan
from tests.conftest import shared

COLON = 20


@pytest.fixture(scope="module")
def ct_and_labels():
    (ct_entry,) = scan(shared("totalseg", "example_ct_dicom")).entries
    (seg_entry,) = scan(shared("totalseg", "example_seg_dicom.nii.gz")).entries
    return to_canonical(load(ct_entry)), to_canonical(load(seg_entry))


def label_boxes(seg, label: int, plane: Plane) -> list[Box]:
    """One box per slice of ``plane`` bounding the label's pixels (pixel edges)."""
    boxes = []
    for index in range(slice_count(seg, plane)):
        rows, cols = np.nonzero(extract_slice(seg, plane, index) == label)
        if rows.size:
            boxes.append(Box(plane, index, cols.min(), rows.min(), cols.max() + 1, rows.max() + 1))
    return boxes


def test_axial_extent_matches_the_label_map(ct_and_labels):
    ct, seg = ct_and_labels
    extent = extent_of(ct, label_boxes(seg, COLON, Plane.AXIAL))
    k, j, i = np.nonzero(seg.voxels == COLON)
    assert (extent.first_slice, extent.last_slice) == (k.min(), k.max())
    assert extent.n_slices == len(np.unique(k))
    # Outer voxel faces: [min - 0.5, max + 0.5] on every axis.
    np.testing.assert_allclose(extent.ijk_min, (i.min() - 0.5, j.min() - 0.5, k.min() - 0.5))
    np.testing.assert_allclose(extent.ijk_max, (i.max() + 0.5, j.max() + 0.5, k.max() + 0.5))
    counts = np.array([i.max() - i.min() + 1, j.max() - j.min() + 1, k.max() - k.min() + 1])
    np.testing.assert_allclose(extent.size_mm, counts * np.asarray(ct.spacing_mm), rtol=1e-6)


def test_extent_in_mm_is_the_voxel_box_mapped_to_the_patient(ct_and_labels):
    ct, seg = ct_and_labels
    extent = extent_of(ct, label_boxes(seg, COLON, Plane.AXIAL))
    centres = ct.index_to_lps(np.argwhere(seg.voxels == COLON)[:, ::-1].astype(float))
    # Every labelled voxel centre lies inside the mm box, within half a voxel of its faces.
    assert np.all(centres >= np.asarray(extent.lps_min_mm) - 1e-6)
    assert np.all(centres <= np.asarray(extent.lps_max_mm) + 1e-6)
    half = np.asarray(ct.spacing_mm) / 2
    np.testing.assert_allclose(centres.min(axis=0) - half, extent.lps_min_mm, atol=1e-3)


def test_coronal_sweep_gives_the_same_box_as_the_axial_one(ct_and_labels):
    ct, seg = ct_and_labels
    axial = extent_of(ct, label_boxes(seg, COLON, Plane.AXIAL))
    coronal = extent_of(ct, label_boxes(seg, COLON, Plane.CORONAL))
    np.testing.assert_allclose(axial.ijk_min, coronal.ijk_min)
    np.testing.assert_allclose(axial.ijk_max, coronal.ijk_max)
    np.testing.assert_allclose(axial.size_mm, coronal.size_mm)


def test_projection_on_another_plane_outlines_the_labels_there(ct_and_labels):
    ct, seg = ct_and_labels
    extent = extent_of(ct, label_boxes(seg, COLON, Plane.AXIAL))
    k, j, i = np.nonzero(seg.voxels == COLON)
    inside = int(np.median(j))
    box = projection_on(ct, extent, Plane.CORONAL, inside)
    assert box is not None and box.plane is Plane.CORONAL and box.slice_index == inside
    top_k = ct.shape[0] - 1  # coronal rows show k upside down
    assert (box.x1_px, box.x2_px) == pytest.approx((i.min(), i.max() + 1))
    assert (box.y1_px, box.y2_px) == pytest.approx((top_k - k.max(), top_k - k.min() + 1))
    assert projection_on(ct, extent, Plane.CORONAL, int(j.max()) + 1) is None
    assert projection_on(ct, extent, Plane.CORONAL, int(j.min()) - 1) is None


def test_no_boxes_no_extent_and_mixed_planes_refused(ct_and_labels):
    ct, _ = ct_and_labels
    assert extent_of(ct, []) is None
    mixed = [Box("axial", 1, 0, 0, 5, 5), Box("coronal", 1, 0, 0, 5, 5)]
    with pytest.raises(ValueError, match="planes"):
        extent_of(ct, mixed)


def test_summary_names_the_slices_as_the_views_do_and_the_gaps(ct_and_labels):
    """Acquired axial slices by Instance Number, head first (index 6 is Im 280, index 2 Im
    284); reformatted coronal slices counted one-based, front to back."""
    ct, _ = ct_and_labels
    axial = extent_of(ct, [Box("axial", n, 10, 10, 20, 30) for n in (2, 3, 6)]).summary()
    assert axial.startswith("axial Im 280–284 (2 without a finding in between)"), axial
    coronal = extent_of(ct, [Box("coronal", n, 10, 10, 20, 15) for n in (2, 6)]).summary()
    assert coronal.startswith("coronal slices 3–7 (3 without"), coronal
    one = extent_of(ct, [Box("axial", 19, 10, 10, 20, 30)]).summary()
    assert one.startswith("axial Im 267;"), one
