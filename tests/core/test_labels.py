"""Label maps on the study's grid: the bundled NIfTI label map on the bundled CT (checked
against nibabel's own reading of the file), exact matching with flipped and permuted copies,
refusal of other grids, and the teaching IoU of a box with a label's box."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from birdview.core.box import Box
from birdview.core.geometry import Plane, to_canonical
from birdview.core.io import load, scan
from birdview.core.labels import LabelMismatchError, agreement, box_iou, label_box, names_match
from birdview.core.labels_io import bundled_labels_path, open_labels
from birdview.core.labels_store import LabelsChoice, load_labels_choice, save_labels_choice
from birdview.core.resources import sample_ct_dir
from tests.conftest import REPO, shared

LABELS = REPO / "resources" / "samples" / "totalseg_ct_labels" / "example_seg_dicom.nii.gz"
CLASSES = REPO / "resources" / "samples" / "totalseg_ct_labels" / "classes.json"


@pytest.fixture(scope="module")
def ct():
    return to_canonical(load(scan(sample_ct_dir()).entries[0]))


@pytest.fixture(scope="module")
def nib_canonical() -> np.ndarray:
    """The label map as nibabel reads it, put in BirdView's canonical (k, j, i) order with
    nibabel's own tools: RAS+ voxel axes, then i → left, j → posterior (both reversed)."""
    image = nib.as_closest_canonical(nib.load(str(LABELS)))
    ras = np.asarray(image.dataobj)
    return np.transpose(ras[::-1, ::-1, :], (2, 1, 0))


def test_bundled_label_map_is_found_and_named_from_its_classes_json(ct):
    assert bundled_labels_path(ct) == str(LABELS)
    label_map = open_labels(LABELS, ct)
    names = json.loads(CLASSES.read_text())["ct_total"]["labels"]
    assert {c.value: c.name for c in label_map.classes} == {
        int(v): names[str(int(v))]
        for v in np.unique(np.asarray(nib.load(str(LABELS)).dataobj))
        if v
    }
    assert label_map.find("Liver").name == "liver"
    assert label_map.study_identity == ct.identity and label_map.kind == "nifti"


def test_bundled_label_map_lands_on_the_voxels_nibabel_reads(ct, nib_canonical):
    label_map = open_labels(LABELS, ct)
    assert np.array_equal(np.asarray(label_map.volume.voxels), nib_canonical)
    # The labels sit on the right tissue: vertebrae on bone, liver on soft tissue.
    hu = np.asarray(ct.voxels)
    bone = [c.value for c in label_map.classes if c.name.startswith("vertebrae")]
    liver = label_map.find("liver").value
    assert np.median(hu[np.isin(nib_canonical, bone)]) > 150
    assert 0 < np.median(hu[nib_canonical == liver]) < 120


def _save_like(tmp_path: Path, data: np.ndarray, affine: np.ndarray, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    path = folder / "labels.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def test_flipped_and_permuted_copies_land_on_the_same_voxels(ct, nib_canonical, tmp_path):
    image = nib.load(str(LABELS))
    data, affine = np.asarray(image.dataobj), image.affine
    flip = np.diag([-1.0, 1.0, 1.0, 1.0])
    flip[0, 3] = data.shape[0] - 1  # voxel x' = n - 1 - x
    flipped = _save_like(tmp_path, data[::-1].copy(), affine @ flip, "flipped")
    swap = np.eye(4)[[1, 0, 2, 3]]  # voxel (x', y') = (y, x)
    swapped = _save_like(tmp_path, np.transpose(data, (1, 0, 2)).copy(), affine @ swap, "swapped")
    for path in (flipped, swapped):
        assert np.array_equal(np.asarray(open_labels(path, ct).volume.voxels), nib_canonical)


def test_a_label_map_of_another_grid_is_refused_naming_the_file(ct, tmp_path):
    with pytest.raises(LabelMismatchError, match=r"'example_seg\.nii\.gz'.*122×101×30 voxels"):
        open_labels(shared("totalseg", "example_seg.nii.gz"), ct)
    image = nib.load(str(LABELS))
    shifted = image.affine.copy()
    shifted[:3, 3] += shifted[:3, 0]  # one voxel along x
    path = _save_like(tmp_path, np.asarray(image.dataobj), shifted, "shifted")
    with pytest.raises(LabelMismatchError, match=r"'labels\.nii\.gz'.*shifted by 0\.98 mm"):
        open_labels(path, ct)


def test_an_image_that_is_no_segmentation_is_refused(ct):
    ct_file = next(iter(sorted(sample_ct_dir().glob("CT.*"))))
    with pytest.raises(ValueError, match=r"neither a NIfTI label map, a DICOM SEG nor an RTSTRUCT"):
        open_labels(ct_file, ct)


def test_iou_of_a_box_with_the_label_of_its_name(ct, nib_canonical):
    label_map = open_labels(LABELS, ct)
    liver = label_map.find("liver").value
    k = int(np.argmax((nib_canonical == liver).sum(axis=(1, 2))))
    rows, cols = np.nonzero(nib_canonical[k] == liver)
    x1, y1, x2, y2 = cols.min(), rows.min(), cols.max() + 1, rows.max() + 1
    truth = label_box(label_map, liver, Plane.AXIAL, k)
    assert (truth.x1_px, truth.y1_px, truth.x2_px, truth.y2_px) == (x1, y1, x2, y2)
    shift = (x2 - x1) // 4
    model = Box(Plane.AXIAL, k, x1 + shift, y1, x2 + shift, y2, label="Liver")
    found = agreement(label_map, model)
    width, height = x2 - x1, y2 - y1
    inter = (width - shift) * height
    assert found.label.name == "liver"
    assert found.iou == pytest.approx(inter / (2 * width * height - inter))
    assert agreement(label_map, Box(Plane.AXIAL, k, 1, 1, 5, 5, label="brain")) is None
    assert box_iou(model, Box(Plane.AXIAL, k + 1, x1, y1, x2, y2)) == 0.0


def test_names_match_ignores_case_underscores_and_word_order():
    assert names_match("kidney_right", "Right kidney")
    assert not names_match("kidney_right", "kidney left")
    assert not names_match("", "")


def test_the_open_segmentation_is_remembered_per_study(ct, tmp_path):
    choice = LabelsChoice(str(LABELS), 0.8, True, True, frozenset({5, 20}))
    save_labels_choice(ct.identity, choice, tmp_path)
    assert load_labels_choice(ct.identity, tmp_path) == choice
    other = "series-sha256:" + "0" * 64
    assert load_labels_choice(other, tmp_path) is None
    # A record copied over another study's file is refused.
    mine = next(tmp_path.glob("labels-*.json"))
    theirs = tmp_path / mine.name.replace(mine.name[7:23], other.split(":")[1][:16])
    theirs.write_text(mine.read_text())
    with pytest.raises(ValueError, match="belongs to another study"):
        load_labels_choice(other, tmp_path)
    # Display settings that make no sense are refused, naming the file.
    record = json.loads(mine.read_text())
    mine.write_text(json.dumps({**record, "opacity": 7}))
    with pytest.raises(ValueError, match=r"'labels-[0-9a-f]{16}\.json' as its display settings"):
        load_labels_choice(ct.identity, tmp_path)
