"""The demo model's training data (experiments/demo_model.py): built by build-data from
the bundled sample CT, its images are exactly what the viewer sends to the model and its boxes
are the label map's."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from birdview.core.geometry import Plane, to_canonical
from birdview.core.io import load, scan
from birdview.core.model_input import render_for_model, volume_intensity_range
from experiments.demo_model import (
    DEMO_LABELS,
    LABEL_FILE,
    SAMPLE_CT,
    SAMPLE_LABELS,
    demo_names,
    grounding_items,
    sample_source,
)
from trainer.data.build import BuildSettings, build_dataset

SLICE = 10


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo")
    source = sample_source(work / "source")
    labels = ",".join(f"{v}:{n}" for v, n in DEMO_LABELS.items())
    spec = f"nifti:{source}?dataset=totalseg&modality=ct&labels={labels}"
    build_dataset([spec], work / "out", BuildSettings(planes=("axial",), test_fraction=0.0))
    return work / "out"


def _viewer_volume():
    (entry,) = scan(SAMPLE_CT).entries
    return to_canonical(load(entry))


def test_images_are_the_slices_the_viewer_sends(built):
    volume = _viewer_volume()
    expected = render_for_model(
        volume, Plane.AXIAL, SLICE, intensity_range=volume_intensity_range(volume)
    )
    written = np.asarray(Image.open(built / "images" / f"ct_00--totalseg--ct--z_{SLICE:04d}.png"))
    assert written.shape == expected.shape
    assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1


def test_liver_boxes_are_the_label_maps(built):
    (entry,) = scan(SAMPLE_LABELS / LABEL_FILE).entries
    labels = np.asarray(to_canonical(load(entry)).voxels)[SLICE]
    rows, cols = np.nonzero(labels == 5)
    height, width = labels.shape
    expected = [
        cols.min() / width * 1000, rows.min() / height * 1000,
        (cols.max() + 1) / width * 1000, (rows.max() + 1) / height * 1000,
    ]  # fmt: skip
    items = json.loads((built / "train.json").read_text())
    answers = [
        answer
        for item in items
        if item["id"].endswith(f"z_{SLICE:04d}")
        for _, answer in item["conversations"]
        if "<ref>liver</ref>" in answer
    ]
    assert answers
    box_text = answers[0].split("<box>")[1].split("</box>")[0]
    numbers = [float(v) for v in re.findall(r"\d+", box_text)]
    assert numbers == pytest.approx(expected, abs=1.0)
    text = " ".join(a.lower() for item in items for _, a in item["conversations"])
    assert not re.search(r"\b(rib|muscle)\b", text)  # only the demo's structures are taught


def test_every_slice_is_taught_every_structure_present_or_not(tmp_path):
    """The demo's grounding items: on every slice, every structure is asked, the app's way and
    as typed, answered with its box where the label map has it and "There is no ..." where
    not, so that a volume sweep can learn where each structure ends."""
    source = sample_source(tmp_path / "source")
    labels = ",".join(f"{v}:{n}" for v, n in DEMO_LABELS.items())
    spec = f"nifti:{source}?dataset=totalseg&modality=ct&labels={labels}"
    settings = BuildSettings(planes=("axial",), test_fraction=1.0, negative_rate=0.0)
    build_dataset([spec], tmp_path / "out", settings)
    vg = json.loads((tmp_path / "out" / "test_vg.json").read_text())
    names = list(demo_names().values())
    items = grounding_items(vg, names)

    (entry,) = scan(SAMPLE_LABELS / LABEL_FILE).entries
    label_map = np.asarray(to_canonical(load(entry)).voxels)
    assert len(items) == label_map.shape[0] * len(names) * 2
    by_value = dict(zip(demo_names().values(), DEMO_LABELS, strict=True))
    for item in items:
        (question, answer), *more = item["conversations"]
        assert not more and question.startswith("Picture 1: <img>images/")
        z = int(item["id"].rsplit("_", 1)[1])
        name = next(n for n in names if f"the {n} located" in question or f"the {n}?" in question)
        present = (label_map[z] == by_value[name]).sum() >= 16
        if present:
            assert answer.startswith(f"The {name} ") and f"<ref>{name}</ref><box>" in answer
        else:
            assert answer == f"There is no {name} in this image."
    # a structure on a few slices only is taught as absent on the others
    taught = {int(i["id"][-4:]) for i in items if "<ref>pancreas</ref>" in i["conversations"][0][1]}
    assert taught == {z for z in range(len(label_map)) if (label_map[z] == 7).sum() >= 16}
    assert 0 < len(taught) < len(label_map)
