"""Phantom slices for the learning proof: deterministic, boxes on their objects, valid
Med-GRIT files that ``fit`` reads."""

from __future__ import annotations

import random

import numpy as np

from experiments.phantoms import SHAPES, make_phantom, write_phantoms
from trainer.medgrit import box_strings, read_items, task_of, validate


def test_phantoms_are_deterministic_and_boxed():
    a, b = make_phantom(random.Random(3)), make_phantom(random.Random(3))
    assert np.array_equal(a.image, b.image) and a.objects == b.objects
    for seed in range(20):
        phantom = make_phantom(random.Random(seed))
        grey = phantom.image[:, :, 0].astype(float)
        assert phantom.image.shape == (224, 224, 3) and 1 <= len(phantom.objects) <= 3
        for name, (x1, y1, x2, y2) in phantom.objects:
            assert name in SHAPES and 20 <= max(x2 - x1, y2 - y1) <= 68
            inside = grey[y1:y2, x1:x2].mean()
            around = grey[max(0, y1 - 6) : y2 + 6, max(0, x1 - 6) : x2 + 6].mean()
            assert (inside < around) if name == "cyst" else (inside > around)


def test_written_files_validate(tmp_path):
    train = write_phantoms(tmp_path, train=8, test=3, seed=1)
    for name in ("train.json", "test_vg.json", "test_roc.json"):
        report = validate(tmp_path / name, tmp_path)
        assert report.ok, report.problems
    assert len(read_items(train)) == 8
    assert {task_of(i["conversations"][0][0]) for i in read_items(tmp_path / "test_vg.json")} == {
        "VG"
    }
    roc = read_items(tmp_path / "test_roc.json")
    assert {task_of(i["conversations"][0][0]) for i in roc} == {"RO"}
    assert all(len(box_strings(i["conversations"][0][0])) == 1 for i in roc)
