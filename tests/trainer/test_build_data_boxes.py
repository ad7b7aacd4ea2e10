"""``build-data`` from box-only sources: a COCO detection JSON (``coco``) and a CSV of boxes
(``boxcsv``, VinDr-CXR's layout and a mapped one).

The annotation files are made from real geometry (`tests.trainer.box_fixtures`: the slices of
TotalSegmentator's small CT and its label map, one box per 8-connected component of a label).
The label map says what is true: the built boxes must be those components' boxes on the 0–1000
grid (``round(x / W * 1000)``, MEDGRIT.md), and every "not present" answer must name a label
with no voxel in its slice.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.trainer.box_fixtures import (
    BOX,
    FILES,
    FINDINGS,
    REF,
    SLICE,
    assert_negatives_absent,
    assert_refused,
    build,
    class_names,
    coco_data,
    components,
    dicom_slices,
    expected_boxes,
    names_used,
    on_grid,
    turns,
    write_coco,
    write_csv,
    write_truth,
)
from trainer.data.names import readable
from trainer.medgrit import image_of, read_items, task_of, validate


@pytest.fixture(scope="module")
def truth(tmp_path_factory):
    """The slices as PNGs, and per slice its label map and its components."""
    return write_truth(tmp_path_factory.mktemp("slices"))


@pytest.fixture(scope="module")
def built_coco(truth, tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    file = write_coco(truth, root)
    return build(f"coco:{file}?modality=ct&dataset=totalseg_sm", root / "out")


@pytest.fixture(scope="module")
def built_csv(truth, tmp_path_factory):
    root = tmp_path_factory.mktemp("vindr")
    file = write_csv(truth, root, vindr=True)
    return build(f"{file}?modality=ct&dataset=totalseg_sm&images={root / 'train'}", root / "out")


# -- COCO ---------------------------------------------------------------------------------------


def test_coco_build_validates(built_coco, truth):
    for file in FILES:
        report = validate(built_coco / file, built_coco / "images")
        assert report.ok, (file, report.problems[:3])
        assert report.items > 0
    card = json.loads((built_coco / "data_card.json").read_text())
    assert card["sources"][0]["kind"] == "coco"
    # One image analysis per slice with a box, naming only labels of that slice.
    analyses = [(k, a) for k, q, a in turns(built_coco) if task_of(q) == "MII"]
    assert sorted(k for k, _ in analyses) == sorted(k for k, f in truth.items() if f["components"])
    expected = expected_boxes(truth)
    for k, answer in analyses:
        names = {name for s, name in expected if s == k}
        assert any(name in answer for name in names), answer


def test_coco_boxes_are_the_components_boxes(built_coco, truth):
    expected = expected_boxes(truth)
    found = defaultdict(list)
    for k, question, answer in turns(built_coco):
        if task_of(question) == "VG" and "<box>" in answer:
            (name,) = set(REF.findall(answer))
            found[(k, name)] += [tuple(map(int, b)) for b in BOX.findall(answer)]
    assert {key: sorted(boxes) for key, boxes in found.items()} == expected
    # Several boxes of one label in one slice (colon loops, lung pieces) are all there.
    assert any(len(boxes) > 1 for boxes in expected.values())


def test_coco_region_questions_ask_real_boxes(built_coco, truth):
    """Every ROC and RC question asks one annotated box and is answered with its label."""
    expected = expected_boxes(truth)
    asked = {"RO": 0, "GC": 0}
    for k, question, answer in turns(built_coco):
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
    assert_negatives_absent(built_coco, truth, set(names_used(truth)))


def test_coco_images_are_the_slices(built_coco, truth):
    for image in (built_coco / "images").iterdir():
        k = int(SLICE.search(image.name).group(1))
        written = np.asarray(Image.open(image).convert("L"))
        assert np.array_equal(written, np.asarray(Image.open(truth[k]["file"])))


def test_fractional_coco_boxes_round_to_the_same_edges(built_coco, truth, tmp_path):
    """TBX11K's boxes are fractional ([214.17, 12...]); corners round to the nearest pixel
    edge, so these shifted boxes give the very same data."""
    file, data = coco_data(truth, tmp_path)
    for annotation in data["annotations"]:
        x, y, w, h = annotation["bbox"]
        annotation["bbox"] = [x + 0.3, y - 0.4, w - 0.2, h + 0.45]
    file.write_text(json.dumps(data))
    out = build(f"coco:{file}?modality=ct&dataset=totalseg_sm", tmp_path / "out")
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

    file, data = coco_data(truth, tmp_path)
    crowd = data["annotations"][0]
    crowd["iscrowd"] = 1
    file.write_text(json.dumps(data))
    spec = parse_source(f"{file}?modality=ct")
    report = SourceReport(spec.text, spec.kind, spec.dataset, {})
    images = {image.case: image for image in box_images(spec, report)}
    assert spec.kind == "coco" and len(images) == len(truth)
    image = images[f"ct_sm_z{crowd['image_id'] - 1:02d}"]
    label = class_names()[crowd["category_id"]]
    others = [a for a in data["annotations"] if a["image_id"] == crowd["image_id"]][1:]
    assert len(image.masks) == len(others)
    assert label not in image.absent
    assert report.skipped == {"crowd box (iscrowd 1)": 1}


def test_labels_option_renames_the_files_labels(truth, tmp_path, caplog):
    """TBX11K's categories read "ActiveTuberculosis"; ``?labels=`` gives the text's names."""
    file, _ = coco_data(truth, tmp_path)
    source = f"coco:{file}?modality=ct&labels=colon:large bowel,liver:hepar"
    out = build(source, tmp_path / "out")
    renamed = {"large bowel": "colon", "hepar": "liver"}
    expected = expected_boxes(truth)
    said = set()
    for k, question, answer in turns(out):
        assert not re.search(r"\b(colon|liver)\b", question + answer), (question, answer)
        if task_of(question) == "VG" and "<box>" in answer:
            (name,) = set(REF.findall(answer))
            if name in renamed:
                boxes = sorted(tuple(map(int, b)) for b in BOX.findall(answer))
                assert boxes == expected[(k, renamed[name])]
                said.add(name)
    assert said == set(renamed)
    typo = f"coco:{file}?modality=ct&labels=spleen:lien,kolon:x"
    assert_refused(typo, tmp_path / "o2", caplog, [str(file), "['kolon']"])


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

    file, _ = coco_data(truth, tmp_path)
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
    expected = expected_boxes(truth, FINDINGS)
    found = defaultdict(list)
    for k, question, answer in turns(built_csv):
        if task_of(question) == "VG" and "<box>" in answer:
            (name,) = set(REF.findall(answer))
            found[(k, name)] += [tuple(map(int, b)) for b in BOX.findall(answer)]
    assert {key: sorted(boxes) for key, boxes in found.items()} == expected
    assert any(len(boxes) > 1 for boxes in expected.values())


def test_no_finding_images_become_negatives(built_csv, truth):
    empty = {k for k, f in truth.items() if not any(v in FINDINGS for v, _, _ in f["components"])}
    assert empty  # slices 15-18: between the gallbladder's end and the lungs' start
    by_slice = defaultdict(list)
    for k, question, answer in turns(built_csv):
        by_slice[k].append((question, answer))
    for k in empty:
        # Kept as a negative image (rate 1): one not-present question, nothing else.
        assert len(by_slice[k]) == 1, by_slice[k]
        question, answer = by_slice[k][0]
        assert task_of(question) == "VG" and "<box>" not in answer
    assert_negatives_absent(built_csv, truth, set(FINDINGS))


def test_mapped_columns_with_sides_build_the_same_data(built_csv, truth, tmp_path):
    file = write_csv(truth, tmp_path, vindr=False)
    columns = "image:file,label:finding,x:left,y:top,w:width,h:height"
    images = tmp_path / "train"
    source = f"boxcsv:{file}?columns={columns}&none=normal&modality=ct&dataset=totalseg_sm"
    out = build(f"{source}&images={images}", tmp_path / "out")
    for name in FILES:
        assert (out / name).read_bytes() == (built_csv / name).read_bytes(), name


def test_a_patient_column_keeps_a_patients_images_on_one_side(truth, tmp_path):
    file = write_csv(truth, tmp_path, vindr=True)
    with open(file, newline="") as handle:
        rows = list(csv.reader(handle))
    rows = [[*rows[0], "patient_id"]] + [[*r, f"p{int(r[0][1:]) // 10}"] for r in rows[1:]]
    with open(file, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    source = f"{file}?modality=ct&dataset=sm&images={tmp_path / 'train'}"
    out = build(source, tmp_path / "out")
    split = json.loads((out / "data_card.json").read_text())["split"]
    train, test = set(split["train"]["case_list"]), set(split["test"]["case_list"])
    assert train | test == {"sm/p0", "sm/p1", "sm/p2"} and not train & test and test


# -- DICOM images (VinDr-CXR ships its X-rays as <id>.dicom) -------------------------------------


def test_csv_boxes_on_dicom_images(tmp_path):
    names = class_names()
    rows, expected = [], defaultdict(list)
    (tmp_path / "dicom").mkdir()
    renders = {}
    for file, hu, labels in dicom_slices():
        # The pairing is right: the liver label covers soft tissue, not air or bone.
        assert 20 < np.median(hu[labels == 5]) < 120
        (tmp_path / "dicom" / file.name).write_bytes(file.read_bytes())
        low, high = np.percentile(hu, [0.5, 99.5])
        renders[file.name] = np.rint((np.clip(hu, low, high) - low) * 255 / (high - low))
        for value, (x, y, w, h), _ in components(labels):
            rows.append([file.name, names[value], value, "R1", x, y, x + w, y + h])
            grid = on_grid((x, y, w, h), labels.shape[::-1])
            expected[(file.name, readable(names[value]))].append(grid)
    header = ["image_id", "class_name", "class_id", "rad_id", "x_min", "y_min", "x_max", "y_max"]
    with open(tmp_path / "train.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    # No ?modality=: the DICOM header says CT.
    out = build(f"{tmp_path / 'train.csv'}?images={tmp_path / 'dicom'}", tmp_path / "out")
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
    file, data = coco_data(truth, tmp_path)
    damage(data)
    file.write_text(json.dumps(data))
    assert_refused(f"coco:{file}?modality=ct", tmp_path / "out", caplog, [str(file), says])


def test_malformed_coco_json_is_refused_in_one_line(truth, tmp_path, caplog):
    file, _ = coco_data(truth, tmp_path)
    file.write_text(file.read_text()[:5000])
    assert_refused(f"coco:{file}?modality=ct", tmp_path / "out", caplog, [str(file)])


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
    file = write_csv(truth, tmp_path, vindr=True)
    with open(file, newline="") as handle:
        rows = list(csv.reader(handle))
    rows[3][1] = "colon"
    damage(rows)
    with open(file, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    source = f"{file}?modality=ct&images={tmp_path / 'train'}"
    assert_refused(source, tmp_path / "out", caplog, [str(file), says])
