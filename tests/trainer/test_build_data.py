"""``build-data`` on the real sample data: boxes match their masks, the split keeps cases apart,
negatives are really absent, the same seed gives the same bytes, the output validates, and a
tiny model learns from it.

Boxes are recomputed here from the source files (masks, label maps) with numpy and compared on
the 0–1000 grid, within one grid unit.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from birdview.core.geometry import Plane, extract_slice, to_canonical
from birdview.core.io import load, scan
from birdview.core.prompts import grounding_question
from tests.conftest import shared
from trainer.cli import main
from trainer.data.build import BuildSettings, build_dataset
from trainer.data.names import readable
from trainer.medgrit import (
    box_strings,
    card_extra_modalities,
    image_of,
    modality_of,
    question_text,
    read_items,
    task_of,
    validate,
)

FILES = ("train.json", "test_vg.json", "test_roc.json", "test_rc.json", "test_mia.json")
TEST_TASKS = {
    "test_vg.json": "VG",
    "test_roc.json": "RO",
    "test_rc.json": "GC",
    "test_mia.json": "MII",
}
AXIS_PLANE = {"x": Plane.SAGITTAL, "y": Plane.CORONAL, "z": Plane.AXIAL}
REF = re.compile(r"<ref>(.*?)</ref>")


# -- helpers --------------------------------------------------------------------------------


def turns_of(out: Path, files=FILES):
    """(file, image file name, question without the image tag, answer) of every turn."""
    for file in files:
        for item in read_items(out / file):
            image = Path(image_of(item)).name
            for question, answer in item["conversations"]:
                yield file, image, question_text(question), answer


def grid_box(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in re.findall(r"\d+", text))


def extent_on_grid(mask: np.ndarray) -> tuple[int, ...]:
    """The mask's pixel-edge extent on the 0–1000 grid, computed here with numpy."""
    rows, cols = np.nonzero(mask)
    height, width = mask.shape
    edges = (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
    scale = (width, height, width, height)
    return tuple(round(e * 1000 / s) for e, s in zip(edges, scale, strict=True))


def close(a, b) -> bool:
    return len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b, strict=True)) <= 1


def component_count(mask: np.ndarray) -> int:
    """8-connected components, counted with SimpleITK's binary labelling."""
    import SimpleITK as sitk

    labelled = sitk.ConnectedComponent(sitk.GetImageFromArray(mask.astype(np.uint8)), True)
    return int(sitk.GetArrayFromImage(labelled).max())


def read_mask(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("L")) > 0


@functools.cache
def masks_2d(image_name: str) -> dict[str, list[np.ndarray]]:
    """Readable label → instance masks, read from the source folders for a 2D image."""
    stem = image_name.removesuffix(".png").split("--")[-1]
    if "--sammed2d_demo--" in image_name:
        folder = shared("sammed2d_demo", "data_demo", "masks")
    else:
        folder = shared("biomedparse_demo", "demo_mask")
    found: dict[str, list[np.ndarray]] = {}
    for path in sorted(folder.glob(f"{stem}_*.png")):
        rest = path.stem[len(stem) + 1 :]
        label = re.sub(r"_\d{3}$", "", rest) if "--sammed2d_demo--" in image_name else rest
        found.setdefault(readable(label), []).append(read_mask(path))
    return found


def case_of(image_name: str) -> str:
    """The case, from the file name alone: the third "--" part for volumes, the source stem
    without its slice number for SA-Med2D, the stem for BiomedParse."""
    parts = image_name.removesuffix(".png").split("--")
    case = parts[2]
    if len(parts) == 3 and parts[1] == "sammed2d_demo":
        case = re.sub(r"_\d+$", "", case)
    return f"{parts[1]}/{case}"


def is_negative(question: str, answer: str) -> bool:
    return task_of(question) == "VG" and "<box>" not in answer


def build(tmp_path: Path, name: str, sources, **settings) -> Path:
    out = tmp_path / name
    build_dataset(sources, out, BuildSettings(**settings), command=f"test {name}")
    return out


# -- builds shared by the tests -------------------------------------------------------------


@pytest.fixture(scope="module")
def built_2d(tmp_path_factory) -> Path:
    """SA-Med2D and BiomedParse; every component kept, so boxes can be checked exactly."""
    sources = [str(shared("sammed2d_demo")), str(shared("biomedparse_demo"))]
    return build(
        tmp_path_factory.mktemp("b2d"),
        "out",
        sources,
        min_component_px=1,
        test_fraction=0.5,
        negative_rate=0.5,
    )


@pytest.fixture(scope="module")
def built_3d(tmp_path_factory) -> Path:
    """TotalSegmentator CT (classes.json) and BraTS FLAIR (label named by the user)."""
    sources = [str(shared("totalseg")), f"{shared('brats_mr')}?labels=1:edema"]
    return build(
        tmp_path_factory.mktemp("b3d"),
        "out",
        sources,
        slice_step=3,
        negative_rate=0.5,
    )


@pytest.fixture(scope="module")
def label_volumes():
    """Canonical label maps and value → name of the two 3D sources, by case."""
    classes = json.loads(shared("totalseg", "classes.json").read_text())
    ct_names = {int(k): v for k, v in classes["ct_total"]["labels"].items() if k != "0"}
    seg = to_canonical(load(scan(shared("totalseg", "example_seg.nii.gz")).entries[0]))
    edema = shared("brats_mr", "labelsTr", "BraTS2021_01646.nii.gz")
    brats = to_canonical(load(scan(edema).entries[0]))
    return {
        "example_ct_sm": (seg, ct_names),
        "BraTS2021_01646": (brats, {1: "edema"}),
    }


def label_slice(image_name: str, label_volumes) -> tuple[np.ndarray, dict[int, str]]:
    _, _, case, slice_tag = image_name.removesuffix(".png").split("--")
    axis, index = slice_tag.split("_")
    volume, names = label_volumes[case]
    return np.asarray(extract_slice(volume, AXIS_PLANE[axis], int(index))), names


# -- boxes ----------------------------------------------------------------------------------


def test_every_grounding_box_matches_its_masks(built_2d):
    checked = 0
    for _, image, question, answer in turns_of(built_2d):
        if task_of(question) != "VG" or "<box>" not in answer:
            continue
        (name,) = REF.findall(answer)
        masks = masks_2d(image)[name]
        boxes = [grid_box(b) for b in box_strings(answer)]
        union = np.logical_or.reduce(masks)
        around = (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )
        assert close(around, extent_on_grid(union)), (image, name)
        assert len(boxes) == sum(component_count(m) for m in masks), (image, name)
        checked += 1
    assert checked > 60


def test_region_questions_point_at_one_mask(built_2d):
    checked = 0
    for _, image, question, answer in turns_of(built_2d, ("test_roc.json",)):
        (region,) = box_strings(question)
        by_name = masks_2d(image)  # answers name the structure as written: "liver", not "Liver"
        assert any(close(grid_box(region), extent_on_grid(m)) for m in by_name[answer]), image
        checked += 1
    assert checked >= 5


def test_instances_stay_apart(built_2d):
    """s0619_32 has two left-hip masks (hip_left_000, _001): two boxes, one for each."""
    hips = masks_2d("ct_00--sammed2d_demo--s0619_32.png")["left hip"]
    assert len(hips) == 2
    answers = [
        a
        for _, image, q, a in turns_of(built_2d)
        if image == "ct_00--sammed2d_demo--s0619_32.png" and task_of(q) == "VG" and "left hip" in q
    ]
    assert answers
    for answer in answers:
        boxes = [grid_box(b) for b in box_strings(answer)]
        assert len(boxes) == 2
        for hip in hips:
            assert any(close(box, extent_on_grid(hip)) for box in boxes)


def test_volume_boxes_match_the_label_map(built_3d, label_volumes):
    checked = 0
    for _, image, question, answer in turns_of(built_3d):
        if task_of(question) != "VG" or "<box>" not in answer:
            continue
        labels, names = label_slice(image, label_volumes)
        (name,) = REF.findall(answer)
        values = [v for v, n in names.items() if readable(n) == name]
        mask = np.isin(labels, values)
        boxes = [grid_box(b) for b in box_strings(answer)]
        around = (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )
        # Components under 16 px get no box, so the boxes lie inside the mask's extent.
        extent = extent_on_grid(mask)
        assert around[0] >= extent[0] - 1 and around[1] >= extent[1] - 1
        assert around[2] <= extent[2] + 1 and around[3] <= extent[3] + 1
        checked += 1
    assert checked > 300


# -- split, negatives, determinism ----------------------------------------------------------


@pytest.mark.parametrize("which", ["built_2d", "built_3d"])
def test_no_case_in_both_splits(which, request):
    out = request.getfixturevalue(which)
    train = {case_of(image) for _, image, _, _ in turns_of(out, ("train.json",))}
    test = {case_of(image) for _, image, _, _ in turns_of(out, FILES[1:])}
    assert train and not train & test
    card = json.loads((out / "data_card.json").read_text())
    assert not set(card["split"]["train"]["case_list"]) & set(card["split"]["test"]["case_list"])


def test_split_puts_whole_cases_in_test(built_2d):
    test = {case_of(image) for _, image, _, _ in turns_of(built_2d, FILES[1:])}
    assert any(c.startswith("sammed2d_demo/") for c in test)
    assert any(c.startswith("biomedparse_demo/") for c in test)


def test_negatives_are_really_absent(built_3d, label_volumes):
    negatives = [(i, q, a) for _, i, q, a in turns_of(built_3d) if is_negative(q, a)]
    assert len(negatives) > 20
    for image, question, answer in negatives:
        labels, names = label_slice(image, label_volumes)
        asked = [n for n in names.values() if re.search(rf"\b{re.escape(readable(n))}\b", question)]
        assert asked, question
        name = max(asked, key=len)
        value = next(v for v, n in names.items() if n == name)
        assert not (labels == value).any(), (image, name)
        assert value in np.unique(np.asarray(label_volumes[image.split("--")[2]][0].voxels))
        assert readable(name) in answer


def test_test_files_hold_one_turn_in_the_apps_wording(built_2d, built_3d):
    for out in (built_2d, built_3d):
        for file, task in TEST_TASKS.items():
            for item in read_items(out / file):
                assert len(item["conversations"]) == 1
                assert task_of(item["conversations"][0][0]) == task
    grounding = [(q, a) for _, _, q, a in turns_of(built_2d, ("test_vg.json",))]
    assert grounding
    for question, answer in grounding:
        assert question == grounding_question(REF.findall(answer)[0])


def test_training_conversations_mix_tasks(built_3d):
    items = read_items(built_3d / "train.json")
    mixed = [
        {task_of(q) for q, _ in item["conversations"]}
        for item in items
        if len(item["conversations"]) > 3
    ]
    assert mixed and max(len(tasks) for tasks in mixed) == 4
    assert all(len(item["conversations"]) <= 8 for item in items)
    first = [item["conversations"][0][0] for item in items]
    assert all(q.startswith("Picture 1: <img>images/") and "</img>\n" in q for q in first)
    assert not any("<img>" in q for item in items for q, _ in item["conversations"][1:])


def test_same_seed_same_bytes_other_seed_other_text(tmp_path):
    sources = [str(shared("sammed2d_demo")), f"{shared('brats_mr')}?labels=1:edema"]
    a = build(tmp_path, "a", sources, seed=7, slice_step=4)
    b = build(tmp_path, "b", sources, seed=7, slice_step=4)
    c = build(tmp_path, "c", sources, seed=8, slice_step=4)
    for file in FILES:
        assert (a / file).read_bytes() == (b / file).read_bytes()
    for image in sorted((a / "images").iterdir()):
        assert image.read_bytes() == (b / "images" / image.name).read_bytes()
    assert (a / "train.json").read_bytes() != (c / "train.json").read_bytes()
    card_a, card_b = (json.loads((d / "data_card.json").read_text()) for d in (a, b))
    assert card_a["seed"] == 7 and card_a["files"] == card_b["files"]


# -- what the output is ---------------------------------------------------------------------


def test_output_validates(built_2d, built_3d):
    """With the modalities the card lists allowed, every file validates without a problem,
    but for a test file left empty (each 3D dataset has one case, which stays in train)."""
    for out in (built_2d, built_3d):
        extra = card_extra_modalities(out / "data_card.json")
        for file in FILES:
            report = validate(out / file, out, extra_modalities=extra)
            if report.items == 0 and file != "train.json":
                assert [p.reason.split(":")[0] for p in report.problems] == ["no items"]
                continue
            assert report.problems == [], file
            assert report.tasks.get("unknown", 0) == 0
    assert validate(built_2d / "test_vg.json", built_2d).items > 0
    assert card_extra_modalities(built_2d) == ("oct", "pathology")
    assert card_extra_modalities(built_3d) == ()
    markdown = (built_2d / "DATA_CARD.md").read_text()
    assert "`oct`, `pathology`" in markdown and "outside Med-GRIT's 8" in markdown
    assert "8-modality mean" in markdown
    assert "Extra modalities" not in (built_3d / "DATA_CARD.md").read_text()


def test_validate_command_reads_the_card(built_2d, capsys):
    train = str(built_2d / "train.json")
    card = str(built_2d / "data_card.json")
    assert main(["validate", train, "--images", str(built_2d), "--data-card", card]) == 0
    out = capsys.readouterr().out
    assert "problems: 0" in out and "pathology" in out and "oct" in out
    assert main(["validate", train, "--images", str(built_2d)]) == 1
    assert "unknown modality 'pathology'" in capsys.readouterr().out


def test_volumes_give_three_planes_named_by_modality(built_3d):
    images = sorted(p.name for p in (built_3d / "images").iterdir())
    for case, modality in (("example_ct_sm", "ct"), ("BraTS2021_01646", "mr")):
        mine = [i for i in images if f"--{case}--" in i]
        assert {i.split("--")[3][0] for i in mine} == {"x", "y", "z"}
        assert {modality_of(i) for i in mine} == {modality}
        assert all(
            re.fullmatch(rf"{modality}_00--\w+--{case}--[xyz]_\d{{4}}\.png", i) for i in mine
        )
    with Image.open(built_3d / "images" / images[0]) as first:
        assert first.mode == "RGB"


def test_card_names_sources_licences_and_skips(built_3d):
    card = json.loads((built_3d / "data_card.json").read_text())
    totalseg, brats = card["sources"]
    assert totalseg["licence"]["name"].startswith("Apache License")
    assert any("example_seg_mr.nii.gz" in reason for reason in totalseg["skipped"])
    assert brats["kind"] == "nifti" and brats["images"] > 0
    assert card["labels"]["edema"]["images"] > 0
    assert card["files"]["train.json"]["items"] == len(read_items(built_3d / "train.json"))
    assert "Data card" in (built_3d / "DATA_CARD.md").read_text()


def test_cli_writes_the_command_into_the_card(tmp_path, caplog):
    out = tmp_path / "cli"
    argv = ["build-data", str(shared("sammed2d_demo")), "--out", str(out), "--seed", "3"]
    assert main(argv) == 0
    card = json.loads((out / "data_card.json").read_text())
    assert "--seed 3" in card["command"] and card["settings"]["seed"] == 3
    assert main(argv) == 2
    assert f"Unable to build into '{out}' as it is not empty" in caplog.text


def unlabelled_source(folder: Path) -> Path:
    """A BiomedParse-style source whose only mask is empty, and an image with no mask."""
    (folder / "train").mkdir(parents=True)
    (folder / "train_mask").mkdir()
    grey = np.full((32, 32), 90, np.uint8)
    Image.fromarray(grey).save(folder / "train" / "01_CT_abdomen.png")
    Image.fromarray(grey).save(folder / "train" / "02_CT_abdomen.png")
    Image.fromarray(np.zeros_like(grey)).save(folder / "train_mask" / "01_CT_abdomen_liver.png")
    return folder


def test_no_usable_labels_say_where_and_leave_nothing_behind(tmp_path):
    source = unlabelled_source(tmp_path / "source")
    out = tmp_path / "out"

    for _ in range(2):  # the same refusal again: nothing of the first blocks the second
        with pytest.raises(ValueError) as refused:
            build(tmp_path, "out", [str(source)])
        assert str(refused.value) == (
            f"Unable to build a dataset as no usable labels were found in '{source}' (masks2d: "
            "every object under 16 px (1); no masks (1)); nothing was written"
        )
        assert sorted(p.name for p in tmp_path.iterdir()) == ["source"]

    out.mkdir()  # an empty folder given as --out is fine, before and after a failure
    with pytest.raises(ValueError, match="no usable labels"):
        build(tmp_path, "out", [str(source)])
    assert out.is_dir() and not any(out.iterdir())
    build(tmp_path, "out", [str(shared("sammed2d_demo"))])  # the rerun, its cause fixed
    assert (out / "data_card.json").is_file() and any((out / "images").iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "source"]


def test_a_file_is_refused_as_out_or_as_a_source(tmp_path):
    afile = tmp_path / "afile.json"
    afile.write_text("[]")
    with pytest.raises(ValueError, match="build into '.*afile.json' as it is a file"):
        build_dataset([str(shared("sammed2d_demo"))], afile, BuildSettings())
    with pytest.raises(ValueError, match="as '.*afile.json' is a file, not a folder"):
        build(tmp_path, "x", [f"masks2d:{afile}"])


def test_bad_sources_are_refused(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        build(tmp_path, "x", [str(tmp_path / "missing")])
    with pytest.raises(ValueError, match="unknown"):
        build(tmp_path, "y", [f"{shared('brats_mr')}?colour=red"])
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
