"""The model-family registry: lookups, and each family's box text on realistic replies."""

from __future__ import annotations

import json

import pytest

from birdview.core import families
from birdview.core.box import Box
from birdview.core.box_codecs import GRID, square_padding
from birdview.core.geometry import Plane
from birdview.core.reasoning import split_reasoning

AXIAL = {"plane": Plane.AXIAL, "slice_index": 0}


def _edges(boxes):
    return [
        (round(b.x1_px, 1), round(b.y1_px, 1), round(b.x2_px, 1), round(b.y2_px, 1)) for b in boxes
    ]


def test_model_types_find_their_family():
    assert families.for_model_type("Qwen2.5-VL").key == "qwen2_5_vl"
    assert families.for_model_type("qwen3_vl_moe").key == "qwen3_vl"
    assert families.for_model_type("qwen").key == "medgrit"
    assert families.for_model_type("gemma3").key == "gemma3"
    assert families.for_config('{"model_type": "qwen2_vl"}').key == "qwen2_vl"
    with pytest.raises(ValueError, match="model_type 'llava' is not one BirdView knows"):
        families.for_model_type("llava")
    with pytest.raises(ValueError, match="not a JSON object"):
        families.for_config("[1, 2]")


def test_every_family_keeps_its_vision_tower_and_head_unquantised():
    for family in families.all_families():
        assert "lm_head" in family.unquantised, family.key
        assert all("." in path or path == "lm_head" for path in family.unquantised), family.key


# -- Gemma 3 / MedGemma ---------------------------------------------------------------------

GEMMA = families.get("gemma3").codec


@pytest.mark.parametrize("size", [(512, 512), (640, 480), (300, 700), (257, 181)])
def test_gemma_boxes_round_trip_through_the_square_padding(size):
    width, height = size
    box = Box(Plane.AXIAL, 0, width * 0.1, height * 0.2, width * 0.6, height * 0.9, label="lung")

    text = GEMMA.encode([box], size)
    back = GEMMA.parse(text, size, **AXIAL).boxes

    side = max(size)
    assert len(back) == 1 and back[0].label == "lung"
    for got, want in zip(
        _edges(back)[0], (box.x1_px, box.y1_px, box.x2_px, box.y2_px), strict=True
    ):
        assert abs(got - want) <= side / GRID


def test_gemma_writes_y_first_on_the_padded_grid():
    # 800 × 400: the image sits in an 800 square with 200 px of padding above it.
    box = Box(Plane.AXIAL, 0, 0, 0, 400, 400, label="heart")

    text = GEMMA.encode([box], (800, 400))

    objects = json.loads(text.removeprefix("```json\n").removesuffix("\n```"))
    assert objects == [{"box_2d": [250, 0, 750, 500], "label": "heart"}]
    assert square_padding(800, 400) == (0, 200)


def test_medgemma_reply_with_reasoning_and_final_answer():
    reply = (
        "The heart is central; the right lung is on the image's left.\n\n"
        "Final Answer:\n```json\n"
        '[{"box_2d": [100, 50, 900, 450], "label": "right lung"},\n'
        ' {"box_2d": [300, 550, 800, 950], "label": "left lung"}]\n```'
    )
    size = (1000, 800)  # padded to 1000 square: 100 px above and below

    answer = split_reasoning(reply, families.get("gemma3").chat.thoughts).answer
    boxes = GEMMA.parse(answer, size, **AXIAL).boxes

    assert [b.label for b in boxes] == ["right lung", "left lung"]
    assert _edges(boxes) == [(50, 0, 450, 800), (550, 200, 950, 700)]


# -- the Qwen families ----------------------------------------------------------------------


def test_qwen3_reply_in_bbox_json():
    reply = '```json\n[\n\t{"bbox_2d": [120, 340, 560, 780], "label": "liver"}\n]\n```'
    boxes = families.get("qwen3_vl").codec.parse(reply, (500, 1000), **AXIAL).boxes
    assert _edges(boxes) == [(60, 340, 280, 780)] and boxes[0].label == "liver"


def test_qwen2_5_reply_in_model_pixels():
    reply = '[{"bbox_2d": [28, 56, 140, 112], "label": "kidney"}]'
    codec = families.get("qwen2_5_vl").codec
    boxes = codec.parse(reply, (512, 512), model_size_px=(280, 280), **AXIAL).boxes
    assert _edges(boxes) == [(51.2, 102.4, 256, 204.8)]


def test_qwen_vl_ref_box_tags():
    reply = "The <ref>spleen</ref><box>(600,200),(800,500)</box> is enlarged."
    parsed = families.get("medgrit").codec.parse(reply, (1000, 1000), **AXIAL)
    assert _edges(parsed.boxes) == [(600, 200, 800, 500)]
    assert parsed.text_without_boxes == "The spleen is enlarged."


def test_think_answer_reply_in_any_json_family():
    reply = (
        "<think>Two kidneys; the left one is on the image's right.</think>"
        '<answer>[{"bbox_2d": [600, 400, 750, 600], "label": "left kidney"}]</answer>'
    )
    answer = split_reasoning(reply).answer
    boxes = families.get("qwen3_vl").codec.parse(answer, (1000, 1000), **AXIAL).boxes
    assert _edges(boxes) == [(600, 400, 750, 600)]
