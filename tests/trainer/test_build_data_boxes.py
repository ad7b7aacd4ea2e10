"""``build-data`` from box-only sources: a COCO detection JSON (``coco``) and a CSV of boxes
(``boxcsv``, VinDr-CXR's layout and a mapped one).

No TBX11K or VinDr-CXR images are here, so the annotation files are made from real geometry we
have: the axial slices of TotalSegmentator's small CT (``totalseg/example_ct_sm.nii.gz``) and
its label map. Each 8-connected component of a label in a slice becomes one COCO annotation
(bbox [x, y, w, h] in pixels, as pycocotools gives a mask's box) or one CSV row, and each slice
is written as a PNG. The label map then says what is true: the built boxes must be those
components' boxes on the 0–1000 grid (``round(x / W * 1000)``, MEDGRIT.md), and every
"not present" answer must name a label with no voxel in its slice.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from tests.conftest import shared
from trainer.cli import main
from trainer.data.names import readable
from trainer.medgrit import image_of, question_text, read_items, task_of, validate

FILES = ("train.json", "test_vg.json", "test_roc.json", "test_rc.json", "test_mia.json")
BOX = re.compile(r"<box>\((\d+),(\d+)\),\((\d+),(\d+)\)</box>")
REF = re.compile(r"<ref>(.*?)</ref>")
SLICE = re.compile(r"z(\d\d)\.png$")
# Findings for the CSV: labels that leave slices 15-18 empty, as a "No finding" read would.
FINDINGS = (4, 10, 11, 14, 18)  # gallbladder, three lung lobes, small bowel


# -- real geometry ----------------------------------------------------------------------------


def _slices():
    """(k, uint8 image, label slice) of every axial slice, anterior up (rows = y)."""
    ct = np.asarray(nib.load(shared("totalseg", "example_ct_sm.nii.gz")).dataobj)
    seg = np.asarray(nib.load(shared("totalseg", "example_seg.nii.gz")).dataobj)
    for k in range(ct.shape[2]):
        window = np.clip((ct[:, :, k].T[::-1] + 160.0) / 400.0 * 255.0, 0, 255)
        yield k, window.astype(np.uint8), np.ascontiguousarray(seg[:, :, k].T[::-1])


def _components(labels: np.ndarray) -> list[tuple[int, tuple[int, int, int, int], int]]:
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


def _names() -> dict[int, str]:
    data = json.loads(shared("totalseg", "classes.json").read_text())
    return {int(v): n for v, n in data["ct_total"]["labels"].items()}


@pytest.fixture(scope="module")
def truth(tmp_path_factory):
    """The slices as PNGs, and per slice its label map and its components."""
    folder = tmp_path_factory.mktemp("slices")
    slices = {}
    for k, pixels, labels in _slices():
        file = folder / f"z{k:02d}.png"
        Image.fromarray(pixels).save(file)
        slices[k] = {"file": file, "labels": labels, "components": _components(labels)}
    return slices


def _grid(box: tuple[int, int, int, int], size: tuple[int, int]) -> tuple[int, ...]:
    """A pixel box (x, y, w, h) on the 0–1000 grid of a (width, height) image."""
    x, y, w, h = box
    width, height = size
    return (
        round(x / width * 1000),
        round(y / height * 1000),
        round((x + w) / width * 1000),
        round((y + h) / height * 1000),
    )


def _expected(truth, values=None) -> dict[tuple[int, str], list[tuple[int, ...]]]:
    """(slice, readable name) → sorted grid boxes of its components."""
    names = _names()
    boxes = defaultdict(list)
    for k, found in truth.items():
        size = found["labels"].shape[::-1]
        for value, box, _ in found["components"]:
            if values is None or value in values:
                boxes[(k, readable(names[value]))].append(_grid(box, size))
    return {key: sorted(found) for key, found in boxes.items()}


# -- files in the two formats -----------------------------------------------------------------


def _coco(truth, root: Path) -> Path:
    """annotations/instances.json + images/ct_sm/zNN.png under ``root`` (TBX11K-like layout:
    file names with a sub-folder, the images two levels above the JSON)."""
    names = _names()
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


def _csv(truth, root: Path, *, vindr: bool) -> Path:
    """A table of the FINDINGS' boxes, one row per component and a no-finding row for the
    slices without any: VinDr-CXR's header and corners, or other names and x/y/w/h."""
    names = _names()
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


def _build(source: str, out: Path) -> Path:
    argv = ["build-data", source, "--out", str(out), "--negative-rate", "1"]
    assert main([*argv, "--min-component-px", "1"]) == 0
    return out


def _turns(out: Path):
    """(slice, question, answer) of every turn of every file."""
    for file in FILES:
        for item in read_items(out / file):
            k = int(SLICE.search(image_of(item)).group(1))
            for question, answer in item["conversations"]:
                yield k, question_text(question), answer


@pytest.fixture(scope="module")
def built_coco(truth, tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    file = _coco(truth, root)
    return _build(f"coco:{file}?modality=ct&dataset=totalseg_sm", root / "out")


@pytest.fixture(scope="module")
def built_csv(truth, tmp_path_factory):
    root = tmp_path_factory.mktemp("vindr")
    file = _csv(truth, root, vindr=True)
    return _build(f"{file}?modality=ct&dataset=totalseg_sm&images={root / 'train'}", root / "out")


# -- COCO ---------------------------------------------------------------------------------------


def test_coco_build_validates(built_coco, truth):
    for file in FILES:
        report = validate(built_coco / file, built_coco / "images")
        assert report.ok, (file, report.problems[:3])
        assert report.items > 0
    card = json.loads((built_coco / "data_card.json").read_text())
    assert card["sources"][0]["kind"] == "coco"
    # One image analysis per slice with a box, naming only labels of that slice.
    analyses = [(k, a) for k, q, a in _turns(built_coco) if task_of(q) == "MII"]
    assert sorted(k for k, _ in analyses) == sorted(k for k, f in truth.items() if f["components"])
    expected = _expected(truth)
    for k, answer in analyses:
        names = {name for s, name in expected if s == k}
        assert any(name in answer for name in names), answer


def test_coco_boxes_are_the_components_boxes(built_coco, truth):
    expected = _expected(truth)
    found = defaultdict(list)
    for k, question, answer in _turns(built_coco):
        if task_of(question) == "VG" and "<box>" in answer:
            (name,) = set(REF.findall(answer))
            found[(k, name)] += [tuple(map(int, b)) for b in BOX.findall(answer)]
    assert {key: sorted(boxes) for key, boxes in found.items()} == expected
    # Several boxes of one label in one slice (colon loops, lung pieces) are all there.
    assert any(len(boxes) > 1 for boxes in expected.values())


def test_coco_region_questions_ask_real_boxes(built_coco, truth):
    """Every ROC and RC question asks one annotated box and is answered with its label."""
    expected = _expected(truth)
    asked = {"RO": 0, "GC": 0}
    for k, question, answer in _turns(built_coco):
        task = task_of(question)
        if task in asked:
            box = tuple(map(int, BOX.search(question).groups()))
            owners = [name for (s, name), boxes in expected.items() if s == k and box in boxes]
            assert len(owners) == 1, (k, box, owners)
            assert owners[0].lower() in answer.lower(), (owners, answer)
            asked[task] += 1
    total = sum(len(b) for b in expected.values())
    assert asked == {"RO": total, "GC": total}


def test_coco_negatives_are_really_absent(built_coco, truth):
    _assert_negatives_absent(built_coco, truth, set(_names_used(truth)))


def test_coco_images_are_the_slices(built_coco, truth):
    for image in (built_coco / "images").iterdir():
        k = int(SLICE.search(image.name).group(1))
        written = np.asarray(Image.open(image).convert("L"))
        assert np.array_equal(written, np.asarray(Image.open(truth[k]["file"])))


def test_fractional_coco_boxes_round_to_the_same_edges(built_coco, truth, tmp_path):
    """TBX11K's boxes are fractional ([214.17, 12...]); corners round to the nearest pixel
    edge, so these shifted boxes give the very same data."""
    file, data = _coco_data(truth, tmp_path)
    for annotation in data["annotations"]:
        x, y, w, h = annotation["bbox"]
        annotation["bbox"] = [x + 0.3, y - 0.4, w - 0.2, h + 0.45]
    file.write_text(json.dumps(data))
    out = _build(f"coco:{file}?modality=ct&dataset=totalseg_sm", tmp_path / "out")
    for name in FILES:
        assert (out / name).read_bytes() == (built_coco / name).read_bytes(), name


def test_a_corner_up_to_a_pixel_outside_is_clipped_and_further_is_refused(truth):
    from trainer.data.box_records import AnnotatedBox
    from trainer.data.box_sources import pixel_edges

    size = truth[0]["labels"].shape[::-1]  # (122, 101)
    inside = AnnotatedBox("liver", -0.8, 3.2, size[0] + 0.9, 40.5, "annotation 1")
    assert pixel_edges(inside, size, Path("a.json"), "z00.png") == (0, 3, size[0], 41)
    thin = AnnotatedBox("liver", 10.2, 7.0, 10.4, 9.0, "annotation 2")
    assert pixel_edges(thin, size, Path("a.json"), "z00.png") == (10, 7, 11, 9)
    beyond = AnnotatedBox("liver", -1.5, 3.2, 50, 40.5, "annotation 3")
    with pytest.raises(ValueError, match=r"'a.json': annotation 3 .* outside the 122x101"):
        pixel_edges(beyond, size, Path("a.json"), "z00.png")


def test_a_crowd_box_is_left_out_and_its_label_is_not_absent(truth, tmp_path):
    from trainer.data.box_sources import box_images
    from trainer.data.sources import SourceReport, parse_source

    file, data = _coco_data(truth, tmp_path)
    crowd = data["annotations"][0]
    crowd["iscrowd"] = 1
    file.write_text(json.dumps(data))
    spec = parse_source(f"{file}?modality=ct")
    report = SourceReport(spec.text, spec.kind, spec.dataset, {})
    images = {image.case: image for image in box_images(spec, report)}
    assert spec.kind == "coco" and len(images) == len(truth)
    image = images[f"ct_sm_z{crowd['image_id'] - 1:02d}"]
    label = _names()[crowd["category_id"]]
    others = [a for a in data["annotations"] if a["image_id"] == crowd["image_id"]][1:]
    assert len(image.masks) == len(others)
    assert label not in image.absent
    assert report.skipped == {"crowd box (iscrowd 1)": 1}


def test_labels_option_renames_the_files_labels(truth, tmp_path, caplog):
    """TBX11K's categories read "ActiveTuberculosis"; ``?labels=`` gives the text's names."""
    file, _ = _coco_data(truth, tmp_path)
    source = f"coco:{file}?modality=ct&labels=colon:large bowel,liver:hepar"
    out = _build(source, tmp_path / "out")
    renamed = {"large bowel": "colon", "hepar": "liver"}
    expected = _expected(truth)
    said = set()
    for k, question, answer in _turns(out):
        assert not re.search(r"\b(colon|liver)\b", question + answer), (question, answer)
        if task_of(question) == "VG" and "<box>" in answer:
            (name,) = set(REF.findall(answer))
            if name in renamed:
                boxes = sorted(tuple(map(int, b)) for b in BOX.findall(answer))
                assert boxes == expected[(k, renamed[name])]
                said.add(name)
    assert said == set(renamed)
    typo = f"coco:{file}?modality=ct&labels=spleen:lien,kolon:x"
    _assert_refused(typo, tmp_path / "o2", caplog, [str(file), "['kolon']"])


def _load_boxes(files):
    image = files.load()
    return image.name, [(m.label, m.instance, m.pixels) for m in image.masks], image.render()


def test_image_records_load_the_same_in_a_worker_process(truth, tmp_path):
    """The per-image records are what a build's worker processes receive: they pickle, and
    load there to the same masks and pixels as here."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from trainer.data.box_sources import box_files
    from trainer.data.sources import SourceReport, parse_source

    file, _ = _coco_data(truth, tmp_path)
    spec = parse_source(f"{file}?modality=ct")
    records = list(box_files(spec, SourceReport(spec.text, spec.kind, spec.dataset, {})))[:3]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        loaded = list(pool.map(_load_boxes, records))
    for record, (name, masks, pixels) in zip(records, loaded, strict=True):
        here = _load_boxes(record)
        assert name == here[0] and np.array_equal(pixels, here[2])
        assert [(m[0], m[1]) for m in masks] == [(m[0], m[1]) for m in here[1]]
        assert all(np.array_equal(a[2], b[2]) for a, b in zip(masks, here[1], strict=True))


# -- CSV ----------------------------------------------------------------------------------------


def test_vindr_csv_build_validates_with_real_boxes(built_csv, truth):
    for file in FILES:
        assert validate(built_csv / file, built_csv / "images").ok, file
    expected = _expected(truth, FINDINGS)
    found = defaultdict(list)
    for k, question, answer in _turns(built_csv):
        if task_of(question) == "VG" and "<box>" in answer:
            (name,) = set(REF.findall(answer))
            found[(k, name)] += [tuple(map(int, b)) for b in BOX.findall(answer)]
    assert {key: sorted(boxes) for key, boxes in found.items()} == expected
    assert any(len(boxes) > 1 for boxes in expected.values())


def test_no_finding_images_become_negatives(built_csv, truth):
    empty = {k for k, f in truth.items() if not any(v in FINDINGS for v, _, _ in f["components"])}
    assert empty  # slices 15-18: between the gallbladder's end and the lungs' start
    by_slice = defaultdict(list)
    for k, question, answer in _turns(built_csv):
        by_slice[k].append((question, answer))
    for k in empty:
        # Kept as a negative image (rate 1): one not-present question, nothing else.
        assert len(by_slice[k]) == 1, by_slice[k]
        question, answer = by_slice[k][0]
        assert task_of(question) == "VG" and "<box>" not in answer
    _assert_negatives_absent(built_csv, truth, set(FINDINGS))


def test_mapped_columns_with_sides_build_the_same_data(built_csv, truth, tmp_path):
    file = _csv(truth, tmp_path, vindr=False)
    columns = "image:file,label:finding,x:left,y:top,w:width,h:height"
    images = tmp_path / "train"
    source = f"boxcsv:{file}?columns={columns}&none=normal&modality=ct&dataset=totalseg_sm"
    out = _build(f"{source}&images={images}", tmp_path / "out")
    for name in FILES:
        assert (out / name).read_bytes() == (built_csv / name).read_bytes(), name


def test_a_patient_column_keeps_a_patients_images_on_one_side(truth, tmp_path):
    file = _csv(truth, tmp_path, vindr=True)
    with open(file, newline="") as handle:
        rows = list(csv.reader(handle))
    rows = [[*rows[0], "patient_id"]] + [[*r, f"p{int(r[0][1:]) // 10}"] for r in rows[1:]]
    with open(file, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    source = f"{file}?modality=ct&dataset=sm&images={tmp_path / 'train'}"
    out = _build(source, tmp_path / "out")
    split = json.loads((out / "data_card.json").read_text())["split"]
    train, test = set(split["train"]["case_list"]), set(split["test"]["case_list"])
    assert train | test == {"sm/p0", "sm/p1", "sm/p2"} and not train & test and test


# -- DICOM images (VinDr-CXR ships its X-rays as <id>.dicom) -------------------------------------


def _dicom_slices(count: int = 3):
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


def test_csv_boxes_on_dicom_images(tmp_path):
    names = _names()
    rows, expected = [], defaultdict(list)
    (tmp_path / "dicom").mkdir()
    renders = {}
    for file, hu, labels in _dicom_slices():
        # The pairing is right: the liver label covers soft tissue, not air or bone.
        assert 20 < np.median(hu[labels == 5]) < 120
        (tmp_path / "dicom" / file.name).write_bytes(file.read_bytes())
        low, high = np.percentile(hu, [0.5, 99.5])
        renders[file.name] = np.rint((np.clip(hu, low, high) - low) * 255 / (high - low))
        for value, (x, y, w, h), _ in _components(labels):
            rows.append([file.name, names[value], value, "R1", x, y, x + w, y + h])
            grid = _grid((x, y, w, h), labels.shape[::-1])
            expected[(file.name, readable(names[value]))].append(grid)
    header = ["image_id", "class_name", "class_id", "rad_id", "x_min", "y_min", "x_max", "y_max"]
    with open(tmp_path / "train.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    # No ?modality=: the DICOM header says CT.
    out = _build(f"{tmp_path / 'train.csv'}?images={tmp_path / 'dicom'}", tmp_path / "out")
    for name in FILES:
        assert validate(out / name, out / "images").ok, name
    found = defaultdict(list)
    for name in FILES:
        for item in read_items(out / name):
            image = image_of(item).split("--")[-1].removesuffix(".png")
            assert image_of(item).startswith("images/ct_00--")
            for question, answer in item["conversations"]:
                if task_of(question) == "VG" and "<box>" in answer:
                    (label,) = set(REF.findall(answer))
                    found[(image, label)] += [tuple(map(int, b)) for b in BOX.findall(answer)]
    assert {k: sorted(v) for k, v in found.items()} == {k: sorted(v) for k, v in expected.items()}
    assert len(list((out / "images").iterdir())) == len(renders) == 3
    for written in (out / "images").iterdir():
        source = written.name.split("--")[-1].removesuffix(".png")  # the DICOM file's name
        grey = np.asarray(Image.open(written).convert("L")).astype(float)
        assert np.abs(grey - renders[source]).max() <= 1


# -- refusals -----------------------------------------------------------------------------------


def _coco_data(truth, root: Path) -> tuple[Path, dict]:
    file = _coco(truth, root)
    return file, json.loads(file.read_text())


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda d: d["annotations"][3]["bbox"].__setitem__(0, 130), "annotation 4 has bbox"),
        (lambda d: d["images"][2].__setitem__("file_name", "ct_sm/gone.png"), "image 3 names"),
        (lambda d: d["annotations"][5].__setitem__("category_id", 999), "category_id 999"),
        (lambda d: d["images"][0].__setitem__("width", 123), "is 123x101 but the file is 122"),
        (lambda d: d["annotations"][7].__setitem__("image_id", 77), "of image id 77"),
    ],
    ids=["bbox-outside", "missing-image", "unknown-category", "wrong-size", "unknown-image"],
)
def test_bad_coco_is_refused_in_one_line(truth, tmp_path, caplog, damage, says):
    file, data = _coco_data(truth, tmp_path)
    damage(data)
    file.write_text(json.dumps(data))
    _assert_refused(f"coco:{file}?modality=ct", tmp_path / "out", caplog, [str(file), says])


def test_malformed_coco_json_is_refused_in_one_line(truth, tmp_path, caplog):
    file, _ = _coco_data(truth, tmp_path)
    file.write_text(file.read_text()[:5000])
    _assert_refused(f"coco:{file}?modality=ct", tmp_path / "out", caplog, [str(file)])


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda rows: rows[3].__setitem__(4, "left edge"), "row 4 (colon) has x_min 'left edge'"),
        (lambda rows: rows[0].__setitem__(1, "kind"), "no column for 'label'"),
        (lambda rows: rows[2].__setitem__(0, "z99"), "row 3 names the image 'z99'"),
        (lambda rows: rows[1].__setitem__(6, "500"), "outside the 122x101 image"),
    ],
    ids=["not-a-number", "no-label-column", "missing-image", "box-outside"],
)
def test_bad_csv_is_refused_in_one_line(truth, tmp_path, caplog, damage, says):
    file = _csv(truth, tmp_path, vindr=True)
    with open(file, newline="") as handle:
        rows = list(csv.reader(handle))
    rows[3][1] = "colon"
    damage(rows)
    with open(file, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    source = f"{file}?modality=ct&images={tmp_path / 'train'}"
    _assert_refused(source, tmp_path / "out", caplog, [str(file), says])


# -- helpers ------------------------------------------------------------------------------------


def _names_used(truth) -> list[int]:
    return sorted({v for f in truth.values() for v, _, _ in f["components"]})


def _assert_negatives_absent(out: Path, truth, values: set[int]) -> None:
    names = {v: n for v, n in _names().items() if v in values}
    negatives = 0
    for k, question, answer in _turns(out):
        if task_of(question) != "VG" or "<box>" in answer:
            continue
        asked = [
            v for v, n in names.items() if re.search(rf"\b{re.escape(readable(n))}\b", question)
        ]
        value = max(asked, key=lambda v: len(names[v]))
        assert not (truth[k]["labels"] == value).any(), (k, names[value])
        negatives += 1
    assert negatives >= len(truth) // 2


def _assert_refused(source: str, out: Path, caplog, says: list[str]) -> None:
    caplog.clear()
    assert main(["build-data", source, "--out", str(out)]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    for text in says:
        assert text in errors[0], errors[0]
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.partial-*"))
