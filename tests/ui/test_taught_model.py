"""The taught tiny model gives its known answers through the real runtime (loader + Engine),
asked the way the viewer asks: canonical sample CT, axial slices rendered for the model."""

from __future__ import annotations

import pytest

from birdview.core.box import Box
from birdview.core.geometry import Plane, slice_count
from birdview.core.model_input import render_for_model, volume_intensity_range
from birdview.core.prompts import grounding_question
from tests.ui.taught import NO_COLON_ANSWER, ROC_ANSWER, load_sample_ct

WIDTH_PX = 512
GRID_UNIT_PX = WIDTH_PX / 1000  # one unit of qwen2_vl's 0–1000 grid on a 512-pixel slice


@pytest.fixture(scope="module")
def volume():
    return load_sample_ct()


@pytest.fixture(scope="module")
def engine(taught_model):
    from birdview.inference.engine import Engine
    from birdview.inference.loader import load_checkpoint

    loaded = load_checkpoint(taught_model.model_dir, device="cpu", precision="fp32")
    assert loaded.family == taught_model.family == "qwen2_vl"
    return Engine(loaded)


@pytest.fixture(scope="module")
def liver_image(volume, taught_model):
    return render_for_model(
        volume,
        Plane.AXIAL,
        taught_model.liver_slice,
        intensity_range=volume_intensity_range(volume),
    )


def _assert_near(box: Box, expected: tuple[float, float, float, float]) -> None:
    got = (box.x1_px, box.y1_px, box.x2_px, box.y2_px)
    assert got == pytest.approx(expected, abs=GRID_UNIT_PX), (got, expected)


def test_taught_facts_match_the_sample(taught_model, volume):
    total = slice_count(volume, Plane.AXIAL)
    assert volume.shape == (20, 512, 512)
    assert taught_model.liver_slice == total // 2
    assert taught_model.colon_slices  # some slices have colon, and some do not
    assert len(taught_model.colon_slices) < total
    assert (taught_model.model_dir / "model.safetensors").is_file()
    assert not list(taught_model.model_dir.glob("*.bin"))


def test_liver_question_gives_the_liver_box(engine, taught_model, liver_image):
    answer = engine.ask(
        liver_image,
        grounding_question("liver"),
        plane="axial",
        slice_index=taught_model.liver_slice,
    )
    assert not answer.dropped, answer.text
    (box,) = answer.boxes
    assert box.label == "liver"
    assert box.plane is Plane.AXIAL and box.slice_index == taught_model.liver_slice
    _assert_near(box, taught_model.liver_box_px)


def test_region_question_names_the_liver(engine, taught_model, liver_image):
    region = Box(Plane.AXIAL, taught_model.liver_slice, *taught_model.liver_box_px)
    answer = engine.ask(liver_image, "", region=region, task="RO")
    assert answer.text == ROC_ANSWER
    assert answer.boxes == []


def test_colon_sweep_finds_the_colon_slices(engine, taught_model, volume):
    results = engine.sweep(volume, grounding_question("colon"), "axial", batch_size=8)
    assert [r.slice_index for r in results] == list(range(slice_count(volume, Plane.AXIAL)))
    found = tuple(r.slice_index for r in results if r.boxes)
    assert found == taught_model.colon_slices
    for result in results:
        if result.slice_index in taught_model.colon_slices:
            (box,) = result.boxes
            assert box.label == "colon" and box.slice_index == result.slice_index
            _assert_near(box, taught_model.colon_box_px)
        else:
            assert result.text == NO_COLON_ANSWER
