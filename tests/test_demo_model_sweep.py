"""The shipped demo model does what its card says, the way the app uses it: a volume sweep of
each structure its card lists over the bundled sample CT (the real loader and inference engine,
the app's question), against TotalSegmentator's label map of that CT. It finds each structure
on the slices that have it and says it is not there on the others, and the numbers its card
prints are the ones measured here."""

from __future__ import annotations

import json
import re
import statistics

import numpy as np
import pytest

from birdview.core.assistant import readable_answer
from birdview.core.geometry import to_canonical
from birdview.core.io import load, scan
from birdview.core.model_card import read_card
from birdview.core.prompts import grounding_question
from birdview.core.resources import demo_model_dir, sample_ct_dir
from experiments.demo_model import DEMO_LABELS
from trainer.data.boxes import components
from trainer.data.names import readable

MIN_PART_PX = 16  # build-data's smallest boxed part: what "on the slice" means to the model
ABSENT_FROM_SLAB = ("gallbladder", "right kidney", "left kidney")


def _canonical(path):
    (entry,) = scan(path).entries
    return to_canonical(load(entry))


def _truth(labels: np.ndarray, value: int) -> list[tuple[float, ...] | None]:
    boxes = []
    for plane in labels:
        parts = [box for box, _ in components(plane == value, MIN_PART_PX)]
        boxes.append(
            (
                min(b.x1 for b in parts),
                min(b.y1 for b in parts),
                max(b.x2 for b in parts),
                max(b.y2 for b in parts),
            )
            if parts
            else None
        )
    return boxes


def _iou(a, b) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(width, 0) * max(height, 0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _drawn(result):
    if not result.boxes:
        return None
    edges = np.array([box.edges_px for box in result.boxes])
    return (*edges[:, :2].min(axis=0), *edges[:, 2:].max(axis=0))


@pytest.fixture(scope="module")
def swept():
    """Structure name → (truth boxes per slice, sweep results per slice, family)."""
    import torch

    from birdview.inference.engine import Engine
    from birdview.inference.loader import load_checkpoint

    torch.set_num_threads(1)
    volume = _canonical(sample_ct_dir())
    labels_file = sample_ct_dir().parent / "totalseg_ct_labels" / "example_seg_dicom.nii.gz"
    labels = np.asarray(_canonical(labels_file).voxels)
    loaded = load_checkpoint(demo_model_dir(), device="cpu", precision="fp32")
    engine = Engine(loaded)
    found = {}
    for value, label in DEMO_LABELS.items():
        name = readable(label)
        results = engine.sweep(volume, grounding_question(name), "axial", batch_size=10)
        assert [r.slice_index for r in results] == list(range(labels.shape[0]))
        found[name] = (_truth(labels, value), results, loaded.family)
    return found


def _measured(truth, results) -> tuple[float, float]:
    drawn = [_drawn(r) for r in results]
    presence = sum((t is None) == (d is None) for t, d in zip(truth, drawn, strict=True))
    ious = [_iou(t, d) if d else 0.0 for t, d in zip(truth, drawn, strict=True) if t]
    return presence / len(truth), statistics.median(ious)


def test_each_structure_on_the_card_is_found_where_it_is_and_only_there(swept):
    card = read_card(demo_model_dir())
    listed = card.trained_on.structures
    assert set(listed) <= set(swept) and len(listed) >= 10
    failing = {}
    for name in listed:
        truth, results = swept[name][:2]
        presence, median_iou = _measured(truth, results)
        if presence < 0.9 or median_iou < 0.5:
            failing[name] = (round(presence, 2), round(median_iou, 2))
    assert not failing, f"presence accuracy, median IoU below 0.9, 0.5: {failing}"


def test_a_structure_on_few_slices_is_not_drawn_on_the_others(swept):
    # the pancreas is on the first slices of this slab only: a sweep must not draw it on all
    truth, results = swept["pancreas"][:2]
    present = [k for k, t in enumerate(truth) if t]
    drawn = [r.slice_index for r in results if r.boxes]
    assert 0 < len(present) <= 6
    assert len(set(drawn) ^ set(present)) <= 2, (present, drawn)


def test_structures_outside_the_slab_are_never_drawn(swept):
    for name in ABSENT_FROM_SLAB:
        truth, results = swept[name][:2]
        assert not any(truth)
        assert [r.slice_index for r in results if r.boxes] == [], name


def test_the_card_prints_the_measured_numbers(swept):
    record = json.loads((demo_model_dir() / "birdview.json").read_text(encoding="utf-8"))
    printed = record["metrics"]["sweep"]
    readme = (demo_model_dir() / "README.md").read_text(encoding="utf-8")
    for name in read_card(demo_model_dir()).trained_on.structures:
        presence, median_iou = _measured(*swept[name][:2])
        assert printed[name]["presence_accuracy"] == pytest.approx(presence, abs=0.001)
        assert printed[name]["median_iou"] == pytest.approx(median_iou, abs=0.001)
        row = f"| {name} | "
        assert row in readme and f"| {presence:.2f} | {median_iou:.2f} |" in readme
    description = read_card(demo_model_dir()).description
    assert "trained on the data it shows" in description and "not a medical model" in description


def test_answers_read_as_sentences_with_lower_case_names(swept):
    for name, (_, results, family) in swept.items():
        for result in results:
            text = readable_answer(result.text, family)
            assert not re.search(r"\b(at|in)\s*\.", text), text
            assert name in text, text
            assert all(box.label == name for box in result.boxes), result.boxes


def test_the_shipped_files_hold_no_path_of_the_build_machine():
    absolute = re.compile(r"""(?:^|[\s:='"])(?:/[\w.-]+/|[A-Za-z]:\\)""")
    for name in ("birdview.json", "data_card.json", "README.md"):
        text = (demo_model_dir() / name).read_text(encoding="utf-8")
        assert not absolute.search(text), (name, absolute.search(text))
    assert read_card(demo_model_dir()) is not None  # the app still reads the card
