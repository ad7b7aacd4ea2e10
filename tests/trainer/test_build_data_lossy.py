"""``build-data`` on JPEG masks: the real SA-Med2D and BiomedParse masks of shared/data, saved
as JPEG at the qualities lossy datasets ship (75 and 90, as Kvasir-SEG's), give the boxes of
the true (PNG) foreground, and no specks of ringing as extra boxes.

The old rule (every grey value above 0 is foreground) is measured on the same files, so the
test fails if lossy masks are read that way again.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import shared
from trainer.cli import main
from trainer.data import image_files as image_files_module
from trainer.data.boxes import regions_of
from trainer.data.names import readable
from trainer.data.sources import (
    LabelMask,
    SourceReport,
    masks2d_images,
    otsu_threshold,
    parse_source,
    read_mask,
    sammed2d_images,
)
from trainer.medgrit import box_strings, image_of, question_text, read_items, task_of

QUALITIES = (75, 90)
MIN_PX = 16
REF = re.compile(r"<ref>(.*?)</ref>")


# -- the sources: real images, their real masks as JPEG -------------------------------------


def _jpeg(png: Path, out: Path, quality: int, mode: str) -> None:
    with Image.open(png) as image:
        image.convert("L").convert(mode).save(out, quality=quality)


def _link_images(folder: Path, target: Path) -> None:
    target.mkdir(parents=True)
    for image in sorted(folder.glob("*.png")):
        (target / image.name).symlink_to(image)


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, str]:
    """SOURCE text of each JPEG source → SOURCE text of the real (PNG) one it copies.

    SA-Med2D masks are written as grey JPEG, BiomedParse masks as RGB JPEG (Kvasir-SEG
    ships its masks as JPEG); the images are links to the real ones.
    """
    root = tmp_path_factory.mktemp("lossy")
    sammed = shared("sammed2d_demo", "data_demo")
    biomed = shared("biomedparse_demo")
    found = {}
    for quality in QUALITIES:
        folder = root / f"sammed2d_q{quality}"
        _link_images(sammed / "images", folder / "images")
        (folder / "masks").mkdir()
        for png in sorted((sammed / "masks").glob("*.png")):
            _jpeg(png, folder / "masks" / f"{png.stem}.jpg", quality, "L")
        found[f"sammed2d:{folder}"] = f"sammed2d:{shared('sammed2d_demo')}"

        folder = root / f"biomedparse_q{quality}"
        _link_images(biomed / "demo", folder / "demo")
        (folder / "demo_mask").mkdir()
        for png in sorted((biomed / "demo_mask").glob("*.png")):
            _jpeg(png, folder / "demo_mask" / f"{png.stem}.jpg", quality, "RGB")
        found[f"masks2d:{folder}"] = f"masks2d:{biomed}"
    return found


def _old_rule(path: Path) -> np.ndarray:
    """How every mask was read before: any grey value above 0 is foreground."""
    with Image.open(path) as image:
        return np.asarray(image.convert("L")) > 0


def _source_images(text: str, *, old_rule: bool = False) -> dict[str, list[LabelMask]]:
    """Image stem → its masks, as the build's adapter reads them (optionally by the old rule)."""
    spec = parse_source(text)
    report = SourceReport(text, spec.kind, spec.dataset, {})
    reader = sammed2d_images if spec.kind == "sammed2d" else masks2d_images
    with pytest.MonkeyPatch.context() as patch:
        if old_rule:
            patch.setattr(image_files_module, "read_mask", _old_rule)
        return {
            i.name.removesuffix(".png").split("--")[-1]: list(i.masks) for i in reader(spec, report)
        }


# -- boxes on the 0–1000 grid ---------------------------------------------------------------


def _grid(box, shape) -> np.ndarray:
    height, width = shape
    return np.array([box.x1 / width, box.y1 / height, box.x2 / width, box.y2 / height]) * 1000


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inner = width * height
    return inner / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inner)


def _compare(sources: dict[str, str], *, old_rule: bool = False) -> list[tuple]:
    """Per mask of every JPEG source: (image, label, instance, largest deviation of a box from
    its true box in grid units (inf when the box counts differ), union-box IoU, boxes, true
    boxes). The truth is the same adapter on the real PNG masks."""
    rows = []
    for jpeg, png in sources.items():
        truth = _source_images(png)
        for stem, masks in _source_images(jpeg, old_rule=old_rule).items():
            shape = masks[0].pixels.shape
            got = {(r.label, r.instance): r for r in regions_of(masks, MIN_PX)}
            for want in regions_of(truth[stem], MIN_PX):
                region = got.get((want.label, want.instance))
                boxes = [_grid(b, shape) for b in region.components] if region else []
                true_boxes = [_grid(b, shape) for b in want.components]
                deviation = (
                    max(float(np.abs(a - b).max()) for a, b in zip(boxes, true_boxes, strict=True))
                    if len(boxes) == len(true_boxes)
                    else np.inf
                )
                iou = _iou(_grid(region.union, shape), _grid(want.union, shape)) if region else 0
                rows.append(
                    (stem, want.label, want.instance, deviation, iou, len(boxes), len(true_boxes))
                )
            # A mask the truth drops (no component of MIN_PX) must not appear from ringing.
            assert len(got) == len(regions_of(truth[stem], MIN_PX)), (jpeg, stem)
    return rows


# -- tests ----------------------------------------------------------------------------------


def test_jpeg_masks_give_the_true_boxes(sources):
    rows = _compare(sources)
    assert len(rows) > 150  # (30 SA-Med2D + 71 BiomedParse masks) x 2 qualities, less tiny
    for stem, label, instance, deviation, _, boxes, true_boxes in rows:
        assert boxes == true_boxes, (stem, label, instance)  # no speck of ringing as a box
        assert deviation <= 2, (stem, label, instance, deviation)
    ious = [row[4] for row in rows]
    assert np.mean(ious) >= 0.97
    assert min(ious) >= 0.9


def test_the_old_rule_fails_on_the_same_files(sources):
    """``> 0`` takes in the ringing: the same check fails (so the test above can fail)."""
    new = _compare(sources)
    old = _compare(sources, old_rule=True)
    assert [r[:3] for r in new] == [r[:3] for r in old]
    worse = [o for n, o in zip(new, old, strict=True) if o[4] < n[4] - 0.01]
    assert worse
    assert np.mean([r[4] for r in old]) < 0.97
    assert any(r[3] > 2 for r in old)
    assert any(r[5] != r[6] for r in old)  # specks as extra boxes


def test_build_data_writes_the_true_boxes(sources, tmp_path):
    """The whole command on the JPEG sources: every grounding answer's boxes are the true
    ones, within 2 grid units."""
    out = tmp_path / "out"
    args = ["build-data", *sources, "--out", str(out), "--min-component-px", str(MIN_PX)]
    assert main([*args, "--negative-rate", "0", "--test-fraction", "0.5"]) == 0
    truth = {}
    for jpeg, png in sources.items():
        by_stem = _source_images(png)
        dataset = Path(jpeg.split(":", 1)[1]).name
        for stem, masks in by_stem.items():
            truth[(dataset, stem)] = masks
    checked = 0
    for file in sorted(out.glob("*.json")):
        if file.name == "data_card.json":
            continue
        for item in read_items(file):
            dataset, stem = Path(image_of(item)).stem.split("--")[1:]
            masks = truth[(dataset, stem)]
            shape = masks[0].pixels.shape
            for question, answer in item["conversations"]:
                if task_of(question_text(question)) != "VG" or "<box>" not in answer:
                    continue
                (name,) = REF.findall(answer)
                # Every instance of the label answers (two right hips, two boxes).
                wanted = [
                    _grid(box, shape)
                    for r in regions_of(masks, MIN_PX)
                    if readable(r.label).lower() == name.lower()
                    for box in r.components
                ]
                boxes = [np.array(_numbers(b), dtype=float) for b in box_strings(answer)]
                assert len(boxes) == len(wanted), (file.name, stem, name)
                for box in boxes:
                    near = min(np.abs(box - w).max() for w in wanted)
                    assert near <= 2, (file.name, stem, name, near)
                checked += 1
    assert checked > 40
    # The card says how lossy masks were read.
    card = json.loads((out / "data_card.json").read_text())
    assert "Otsu" in card["conventions"]["masks"]
    assert "Otsu" in (out / "DATA_CARD.md").read_text()


def _numbers(box: str) -> list[int]:
    return [int(v) for v in re.findall(r"\d+", box)]


# -- the threshold itself -------------------------------------------------------------------


def test_otsu_keeps_clean_masks_as_they_were():
    """A two-valued image cuts at its lower value (so ``> t`` equals ``> 0`` for 0/255), one
    value cuts at 0, and a blurred edge cuts between the two peaks."""
    clean = np.zeros((8, 8), np.uint8)
    clean[2:5, 2:5] = 255
    assert otsu_threshold(clean) == 0
    assert otsu_threshold(np.zeros((4, 4), np.uint8)) == 0
    assert otsu_threshold(np.full((4, 4), 255, np.uint8)) == 0
    rung = np.concatenate([np.full(100, 0), np.full(20, 8), np.full(20, 245), np.full(100, 255)])
    assert 8 <= otsu_threshold(rung.astype(np.uint8)) < 245


def test_lossless_masks_keep_every_label_value(tmp_path):
    """A PNG with small values (class ids 1, 2, 3) is still read as ``> 0``."""
    values = np.zeros((10, 10), np.uint8)
    values[1:3, 1:3], values[4:6, 4:6], values[7:9, 7:9] = 1, 2, 3
    Image.fromarray(values).save(tmp_path / "ids.png")
    assert (read_mask(tmp_path / "ids.png") == (values > 0)).all()
