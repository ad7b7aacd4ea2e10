"""``build-data`` on a DICOM series with a DICOM SEG.

The sample data has no SEG, so one is made here with highdicom from the TotalSegmentator CT
series and its NIfTI label map (the two are on the same grid, tests/core/test_alignment.py).
The built boxes are then checked against the NIfTI label map: a SEG read upside down or with
its frames in the wrong slices would put them elsewhere.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from birdview.core.geometry import Plane, extract_slice, to_canonical
from birdview.core.io import load, scan
from tests.conftest import shared
from tests.core.seg_files import write_binary_seg
from trainer.data.build import BuildSettings, build_dataset
from trainer.data.names import readable
from trainer.medgrit import box_strings, image_of, modality_of, question_text, read_items, task_of

FILES = ("train.json", "test_vg.json", "test_roc.json", "test_rc.json", "test_mia.json")


def make_seg(folder: Path) -> dict[int, str]:
    """Copy the CT series to ``folder/ct`` and write ``folder/seg.dcm`` from the NIfTI label
    map; returns segment number → class name."""
    import highdicom as hd
    import pydicom

    shutil.copytree(shared("totalseg", "example_ct_dicom"), folder / "ct")
    (ct_entry,) = scan(folder / "ct").entries
    ct = to_canonical(load(ct_entry))
    seg = to_canonical(load(scan(shared("totalseg", "example_seg_dicom.nii.gz")).entries[0]))
    assert ct.shape == seg.shape and np.allclose(ct.origin_lps_mm, seg.origin_lps_mm, atol=1e-2)
    labels = np.asarray(seg.voxels)
    classes = json.loads(shared("totalseg", "classes.json").read_text())["ct_total"]["labels"]
    values = [int(v) for v in np.unique(labels) if v]
    bones = [v for v in values if classes[str(v)].startswith(("vertebrae", "rib"))]
    assert np.median(np.asarray(ct.voxels)[np.isin(labels, bones)]) > 150  # labels on bone
    numbers = np.zeros(labels.max() + 1, dtype=np.uint8)
    numbers[values] = np.arange(1, len(values) + 1)
    # The example series has empty UIDs (see shared/data/README.md); highdicom needs them.
    study, series, frame = hd.UID(), hd.UID(), hd.UID()
    sources = []
    for source in ct.sources:  # canonical order: slice k of the label map
        dataset = pydicom.dcmread(source.path)
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID
        dataset.SOPClassUID = dataset.file_meta.MediaStorageSOPClassUID
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID = study, series
        dataset.FrameOfReferenceUID = dataset.get("FrameOfReferenceUID") or frame
        sources.append(dataset)
    names = [classes[str(v)] for v in values]
    write_binary_seg(folder / "seg.dcm", sources, numbers[labels], names)
    return {n: classes[str(v)] for n, v in enumerate(values, start=1)}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dicomseg")
    names = make_seg(folder / "source")
    out = folder / "out"
    settings = BuildSettings(
        slice_step=4, planes=("axial", "coronal"), negative_rate=0.5, min_component_px=1
    )
    build_dataset([str(folder / "source")], out, settings, command="test")
    return out, names


@pytest.fixture(scope="module")
def nifti_labels():
    seg = to_canonical(load(scan(shared("totalseg", "example_seg_dicom.nii.gz")).entries[0]))
    classes = json.loads(shared("totalseg", "classes.json").read_text())["ct_total"]["labels"]
    return seg, {int(k): v for k, v in classes.items() if k != "0"}


def test_detected_and_named_from_the_seg(built):
    out, names = built
    card = json.loads((out / "data_card.json").read_text())
    (source,) = card["sources"]
    assert source["kind"] == "dicomseg" and source["images"] > 0
    assert set(card["labels"]) <= set(names.values())
    images = sorted(p.name for p in (out / "images").iterdir())
    assert {modality_of(i) for i in images} == {"ct"}
    assert {i.split("--")[3][0] for i in images} == {"y", "z"}


def test_axial_boxes_match_the_nifti_label_map(built, nifti_labels):
    out, _ = built
    seg, classes = nifti_labels
    checked = 0
    for file in FILES:
        for item in read_items(out / file):
            image = Path(image_of(item)).name
            axis, index = image.removesuffix(".png").split("--")[3].split("_")
            if axis != "z":
                continue
            labels = np.asarray(extract_slice(seg, Plane.AXIAL, int(index)))
            for question, answer in item["conversations"]:
                if task_of(question_text(question)) != "VG" or "<box>" not in answer:
                    continue
                (name,) = re.findall(r"<ref>(.*?)</ref>", answer)
                values = [v for v, n in classes.items() if readable(n) == name]
                rows, cols = np.nonzero(np.isin(labels, values))
                edges = (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
                extent = [round(e * 1000 / 512) for e in edges]
                boxes = [[int(v) for v in re.findall(r"\d+", b)] for b in box_strings(answer)]
                around = [
                    min(b[0] for b in boxes),
                    min(b[1] for b in boxes),
                    max(b[2] for b in boxes),
                    max(b[3] for b in boxes),
                ]
                # Every component is kept (min_component_px=1): the boxes span the extent.
                assert max(abs(a - e) for a, e in zip(around, extent, strict=True)) <= 1
                checked += 1
    assert checked > 20


def test_coronal_slices_are_resized_to_square_pixels(built):
    from PIL import Image

    out, _ = built
    coronal = sorted((out / "images").glob("*--y_*.png"))
    assert coronal
    with Image.open(coronal[0]) as image:
        # 20 slices 2 mm apart over 0.977 mm pixels: 41 rows, not 20.
        assert image.size == (512, 41)
