"""Class names beside a label map: nnU-Net dataset.json (v1 and v2) one folder up, an ITK-SNAP
label description file, the bundled classes.json sections, and none at all — on the BraTS
FLAIR volume and its edema label (an nnU-Net style imagesTr/labelsTr layout)."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from birdview.core.geometry import to_canonical
from birdview.core.io.nifti import load_nifti, scan_nifti
from birdview.core.labels_io import open_labels
from birdview.core.labels_names import find_names, read_itksnap, read_json_names
from tests.conftest import REPO, shared

BRATS = "BraTS2021_01646.nii.gz"

# The header ITK-SNAP writes, then its lines: IDX R G B A VIS MSH "LABEL".
ITKSNAP = """\
################################################
# ITK-SnAP Label Description File
# File format:
# IDX   -R-  -G-  -B-  -A--  VIS MSH  LABEL
################################################
    0     0    0    0        0  0  0    "Clear Label"
    1   255  128    0        1  1  1    "Peritumoral edema"
"""


@pytest.fixture
def brats(tmp_path):
    """A copy of the BraTS case in its imagesTr/labelsTr layout, and its image as a study."""
    for part in ("imagesTr", "labelsTr"):
        (tmp_path / part).mkdir()
        shutil.copy(shared("brats_mr", part, BRATS), tmp_path / part / BRATS)
    study = to_canonical(load_nifti(scan_nifti(str(tmp_path / "imagesTr" / BRATS))))
    return tmp_path, study


def test_without_a_names_file_labels_are_numbered_and_said_so(brats):
    folder, study = brats
    label_map = open_labels(folder / "labelsTr" / BRATS, study)
    assert [c.name for c in label_map.classes] == ["label 1"]
    assert label_map.notes == ("no class names file beside it; labels are numbered",)
    raw = np.asarray(nib.load(str(folder / "labelsTr" / BRATS)).dataobj)
    assert int((np.asarray(label_map.volume.voxels) == 1).sum()) == int((raw == 1).sum()) > 0


@pytest.mark.parametrize(
    "labels",
    [{"background": 0, "edema": 1}, {"0": "background", "1": "edema"}],
    ids=["nnunet-v2", "nnunet-v1"],
)
def test_dataset_json_one_folder_up_names_the_labels(brats, labels):
    folder, study = brats
    (folder / "dataset.json").write_text(json.dumps({"name": "BraTS", "labels": labels}))
    label_map = open_labels(folder / "labelsTr" / BRATS, study)
    assert [(c.value, c.name) for c in label_map.classes] == [(1, "edema")]
    assert label_map.notes == ()


def test_itksnap_label_file_names_and_colours_the_labels(brats):
    folder, study = brats
    (folder / "labelsTr" / "brats.label").write_text(ITKSNAP)
    label_map = open_labels(folder / "labelsTr" / BRATS, study)
    (edema,) = label_map.classes
    assert (edema.value, edema.name, edema.colour) == (1, "Peritumoral edema", (255, 128, 0))


def test_a_broken_names_file_is_reported_naming_it(tmp_path):
    broken = tmp_path / "labels.label"
    broken.write_text('1 255 0 "liver"\n')
    with pytest.raises(ValueError, match=r"'.*labels\.label' as line 1 is not"):
        read_itksnap(str(broken))
    (tmp_path / "classes.json").write_text('{"labels": {"1": ')
    with pytest.raises(ValueError, match=r"classes\.json' as Expecting value"):
        find_names(str(tmp_path / "seg.nii.gz"))


def test_bundled_classes_json_sections_apply_to_their_files_only():
    classes = REPO / "resources" / "samples" / "totalseg_ct_labels" / "classes.json"
    ct = read_json_names(str(classes), "example_seg_dicom.nii.gz")
    assert ct.names[5] == "liver" and 0 not in ct.names
    # The MR section lists names without values: nothing is guessed for the MR map.
    assert read_json_names(str(classes), "example_seg_mr.nii.gz").names == {}
    assert read_json_names(str(classes), "someone_else.nii.gz").names == {}


def test_a_notes_file_named_like_labels_does_not_block_the_label_map(brats):
    folder, study = brats
    (folder / "labelsTr" / "labels_readme.txt").write_text("Edema was outlined by hand.\n")
    (folder / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "edema": 1}}))
    label_map = open_labels(folder / "labelsTr" / BRATS, study)
    assert [c.name for c in label_map.classes] == ["edema"]


def test_the_mr_sample_map_is_numbered_as_classes_json_has_no_values_for_it():
    study = to_canonical(load_nifti(scan_nifti(str(shared("totalseg", "example_mr_sm.nii.gz")))))
    seg = shared("totalseg", "example_seg_mr.nii.gz")
    label_map = open_labels(seg, study)
    assert label_map.notes == ("classes.json names no values for this file; labels are numbered",)
    present = np.unique(np.asarray(nib.load(str(seg)).dataobj))
    assert [c.value for c in label_map.classes] == [int(v) for v in present if v]
    assert all(c.name == f"label {c.value}" for c in label_map.classes)
