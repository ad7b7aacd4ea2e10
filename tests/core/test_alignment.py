"""The TotalSegmentator CT series (DICOM) and its label map (NIfTI) are the same grid.

Loading each through its own reader and bringing both to the viewer's canonical orientation
must give the same shape, spacing, origin and direction, and the labels must land on tissue
that has the right Hounsfield units.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from birdview.core.geometry import Plane, orientation_letters, to_canonical
from birdview.core.io import load, scan
from tests.conftest import shared


@pytest.fixture(scope="module")
def ct_and_labels():
    (ct_entry,) = scan(shared("totalseg", "example_ct_dicom")).entries
    (seg_entry,) = scan(shared("totalseg", "example_seg_dicom.nii.gz")).entries
    return to_canonical(load(ct_entry)), to_canonical(load(seg_entry))


def test_same_grid_after_reading(ct_and_labels):
    ct, seg = ct_and_labels
    assert ct.shape == seg.shape == (20, 512, 512)
    np.testing.assert_allclose(ct.spacing_mm, seg.spacing_mm, atol=1e-3)
    np.testing.assert_allclose(ct.origin_lps_mm, seg.origin_lps_mm, atol=1e-2)
    np.testing.assert_allclose(ct.direction, seg.direction, atol=1e-6)
    for plane in Plane:
        assert orientation_letters(ct, plane) == orientation_letters(seg, plane)


def test_labels_sit_on_matching_tissue(ct_and_labels):
    ct, seg = ct_and_labels
    classes = json.loads(shared("totalseg", "classes.json").read_text())
    names = {int(k): v for k, v in classes["ct_total"]["labels"].items()}
    labels = np.asarray(seg.voxels)
    hu = np.asarray(ct.voxels)
    medians = {names[v]: float(np.median(hu[labels == v])) for v in np.unique(labels) if v}
    bones = ("vertebrae", "rib", "humerus")
    bone = [m for n, m in medians.items() if n.startswith(bones)]
    assert len(bone) > 10 and min(bone) > 150  # cortical and trabecular bone is dense
    assert -100 < medians["autochthon_left"] < 100 and -100 < medians["autochthon_right"] < 100
    assert medians["colon"] < -300  # bowel gas
    # One row flip away (NIfTI's LAS against DICOM's LPS), the same labels land on air and fat.
    flipped = labels[:, ::-1, :]
    bone_flipped = [
        float(np.median(hu[flipped == v]))
        for v, n in names.items()
        if n.startswith(bones) and (labels == v).any()
    ]
    assert min(bone_flipped) < -500
