"""Box annotation files made from real geometry, for the box-source tests
(`test_build_data_boxes`).

No TBX11K or VinDr-CXR images are here, so the annotation files are made from real geometry we
have: the axial slices of TotalSegmentator's small CT (``totalseg/example_ct_sm.nii.gz``) and
its label map. Each 8-connected component of a label in a slice becomes one COCO annotation
(bbox [x, y, w, h] in pixels, as pycocotools gives a mask's box) or one CSV row, and each slice
is written as a PNG. The label map then says what is true.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image

from tests.conftest import shared
from trainer.cli import main
from trainer.data.names import readable
from trainer.medgrit import image_of, question_text, read_items, task_of

FILES = ("train.json", "test_vg.json", "test_roc.json", "test_rc.json", "test_mia.json")
BOX = re.compile(r"<box>\((\d+),(\d+)\),\((\d+),(\d+)\)</box>")
REF = re.compile(r"<ref>(.*?)</ref>")
SLICE = re.compile(r"z(\d\d)\.png$")
# Findings for the CSV: labels that leave slices 15-18 empty, as a "No finding" read would.
FINDINGS = (4, 10, 11, 14, 18)  # gallbladder, three lung lobes, small bowel


# -- real geometry ----------------------------------------------------------------------------


def ct_slices():
    """(k, uint8 image, label slice) of every axial slice, anterior up (rows = y)."""
    ct = np.asarray(nib.load(shared("totalseg", "example_ct_sm.nii.gz")).dataobj)
    seg = np.asarray(nib.load(shared("totalseg", "example_seg.nii.gz")).dataobj)
    for k in range(ct.shape[2]):
        window = np.clip((ct[:, :, k].T[::-1] + 160.0) / 400.0 * 255.0, 0, 255)
        yield k, window.astype(np.uint8), np.ascontiguousarray(seg[:, :, k].T[::-1])


def components(labels: np.ndarray) -> list[tuple[int, tuple[int, int, int, int], int]]:
    """(label value, (x, y, w, h), pixel count) of every 8-connected component, by SimpleITK."""
    import SimpleITK as sitk

    found = []
    for value in (int(v) for v in np.unique(labels) if v):
        image = sitk.GetImageFromArray((labels == value).astype(np.uint8))
        components = sitk.ConnectedComponent(image, True)
        stats = sitk.LabelShapeStatisticsImageFilter()
        stats.Execute(components)
        for component in stats.GetLabels():
            box = tuple(int(v) for v in stats.GetBoundingBox(component))
            found.append((value, box, int(stats.GetNumberOfPixels(component))))
    return found


def class_names() -> dict[int, str]:
    data = json.loads(shared("totalseg", "classes.json").read_text())
    return {int(v): n for v, n in data["ct_total"]["labels"].items()}


def write_truth(folder: Path) -> dict:
    """The slices as PNGs in ``folder``, and per slice its label map and its components."""
    slices = {}
    for k, pixels, labels in ct_slices():
        file = folder / f"z{k:02d}.png"
        Image.fromarray(pixels).save(file)
        slices[k] = {"file": file, "labels": labels, "components": components(labels)}
    return slices


def on_grid(box: tuple[int, int, int, int], size: tuple[int, int]) -> tuple[int, ...]:
    """A pixel box (x, y, w, h) on the 0–1000 grid of a (width, height) image."""
    x, y, w, h = box
    width, height = size
    return (
        round(x / width * 1000),
        round(y / height * 1000),
        round((x + w) / width * 1000),
        round((y + h) / height * 1000),
    )


def expected_boxes(truth, values=None) -> dict[tuple[int, str], list[tuple[int, ...]]]:
    """(slice, readable name) → sorted grid boxes of its components."""
    names = class_names()
    boxes = defaultdict(list)
    for k, found in truth.items():
        size = found["labels"].shape[::-1]
        for value, box, _ in found["components"]:
            if values is None or value in values:
                boxes[(k, readable(names[value]))].append(on_grid(box, size))
    return {key: sorted(found) for key, found in boxes.items()}


# -- files in the two formats -----------------------------------------------------------------


def write_coco(truth, root: Path) -> Path:
    """annotations/instances.json + images/ct_sm/zNN.png under ``root`` (TBX11K-like layout:
    file names with a sub-folder, the images two levels above the JSON)."""
    names = class_names()
    images, annotations, used = [], [], set()
    for k, found in truth.items():
        target = root / "images" / "ct_sm" / found["file"].name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(found["file"].read_bytes())
        height, width = found["labels"].shape
        images.append(
            {"id": k + 1, "file_name": f"ct_sm/{target.name}", "width": width, "height": height}
        )
        for value, box, count in found["components"]:
            used.add(value)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": k + 1,
                    "category_id": value,
                    "bbox": list(box),
                    "area": count,
                    "iscrowd": 0,
                    "segmentation": [],
                }
            )
    categories = [{"id": v, "name": names[v], "supercategory": "anatomy"} for v in sorted(used)]
    file = root / "annotations" / "instances.json"
    file.parent.mkdir(parents=True)
    data = {"images": images, "annotations": annotations, "categories": categories}
    file.write_text(json.dumps(data))
    return file


def write_csv(truth, root: Path, *, vindr: bool) -> Path:
    """A table of the FINDINGS' boxes, one row per component and a no-finding row for the
    slices without any: VinDr-CXR's header and corners, or other names and x/y/w/h."""
    names = class_names()
    (root / "train").mkdir(parents=True)
    rows = []
    for k, found in truth.items():
        image_id = f"z{k:02d}"
        (root / "train" / found["file"].name).write_bytes(found["file"].read_bytes())
        boxes = [(v, b) for v, b, _ in found["components"] if v in FINDINGS]
        for value, (x, y, w, h) in boxes:
            if vindr:
                rows.append([image_id, names[value], value, "R1", x, y, x + w, y + h])
            else:
                rows.append([image_id, names[value], x, y, w, h])
        if not boxes and vindr:
            rows.append([image_id, "No finding", 14, "R1", "", "", "", ""])
        elif not boxes:
            rows.append([image_id, "normal", "", "", "", ""])
    header = (
        ["image_id", "class_name", "class_id", "rad_id", "x_min", "y_min", "x_max", "y_max"]
        if vindr
        else ["file", "finding", "left", "top", "width", "height"]
    )
    file = root / "train.csv"
    with open(file, "w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    return file


def build(source: str, out: Path) -> Path:
    argv = ["build-data", source, "--out", str(out), "--negative-rate", "1"]
    assert main([*argv, "--min-component-px", "1"]) == 0
    return out


def turns(out: Path):
    """(slice, question, answer) of every turn of every file."""
    for file in FILES:
        for item in read_items(out / file):
            k = int(SLICE.search(image_of(item)).group(1))
            for question, answer in item["conversations"]:
                yield k, question_text(question), answer


def dicom_slices(count: int = 3):
    """(file, HU array, label slice on the DICOM pixel grid) of a few slices of the real CT
    series. The label map is LAS with row j = 511 - DICOM row and k = 0 the lowest slice
    (shared/data/README.md), so on the DICOM grid it is seg[:, ::-1, k].T."""
    import pydicom

    files = sorted(
        shared("totalseg", "example_ct_dicom").iterdir(),
        key=lambda f: float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]),
    )
    seg = np.asarray(nib.load(shared("totalseg", "example_seg_dicom.nii.gz")).dataobj)
    for k in np.linspace(0, len(files) - 1, count).round().astype(int):
        data = pydicom.dcmread(files[k])
        hu = data.pixel_array * float(data.RescaleSlope) + float(data.RescaleIntercept)
        yield files[k], hu, np.ascontiguousarray(seg[:, ::-1, k].T)


def coco_data(truth, root: Path) -> tuple[Path, dict]:
    """The COCO file written under ``root`` and its content, to damage and write back."""
    file = write_coco(truth, root)
    return file, json.loads(file.read_text())


# -- checks ---------------------------------------------------------------------------------------


def names_used(truth) -> list[int]:
    return sorted({v for f in truth.values() for v, _, _ in f["components"]})


def assert_negatives_absent(out: Path, truth, values: set[int]) -> None:
    names = {v: n for v, n in class_names().items() if v in values}
    negatives = 0
    for k, question, answer in turns(out):
        if task_of(question) != "VG" or "<box>" in answer:
            continue
        asked = [
            v for v, n in names.items() if re.search(rf"\b{re.escape(readable(n))}\b", question)
        ]
        value = max(asked, key=lambda v: len(names[v]))
        assert not (truth[k]["labels"] == value).any(), (k, names[value])
        negatives += 1
    assert negatives >= len(truth) // 2


def assert_refused(source: str, out: Path, caplog, says: list[str]) -> None:
    caplog.clear()
    assert main(["build-data", source, "--out", str(out)]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    for text in says:
        assert text in errors[0], errors[0]
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.partial-*"))
