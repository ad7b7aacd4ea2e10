"""Reasoning apart from the answer, in every form reasoning models write it."""

from __future__ import annotations

import time

import pytest

from birdview.core import families
from birdview.core.geometry import Plane
from birdview.core.reasoning import Reply, split_reasoning

GEMMA = families.get("gemma3")

# The shape of MedGemma's localization replies: reasoning, a "Final Answer:" line, fenced JSON.
MEDGEMMA_REPLY = """The image is a frontal chest X-ray. The right lung occupies the left side \
of the image. I will place a box from the apex to the costophrenic angle.

Final Answer:
```json
[
  {"box_2d": [120, 95, 830, 480], "label": "right lung"}
]
```"""


def test_final_answer_line_splits_medgemma_reply():
    reply = split_reasoning(MEDGEMMA_REPLY, GEMMA.chat.thoughts)

    assert reply.reasoning.startswith("The image is a frontal chest X-ray.")
    assert reply.answer.startswith("```json") and "box_2d" in reply.answer
    assert not reply.thinking


def test_r1_style_think_and_answer_tags():
    text = (
        "<think>The liver is large; not the spleen at (10,10),(20,20).</think>\n<answer>"
        '[{"bbox_2d": [100, 200, 300, 400], "label": "liver"}]</answer>'
    )

    reply = split_reasoning(text)

    assert reply.reasoning == "The liver is large; not the spleen at (10,10),(20,20)."
    assert reply.answer == '[{"bbox_2d": [100, 200, 300, 400], "label": "liver"}]'


def test_boxes_come_from_the_answer_only():
    text = (
        '<think>Maybe {"bbox_2d": [1, 1, 500, 500]}? No.</think>'
        '<answer>{"bbox_2d": [100, 200, 300, 400], "label": "liver"}</answer>'
    )
    codec = families.get("qwen3_vl").codec

    reply = split_reasoning(text)
    boxes = codec.parse(reply.answer, (1000, 1000), plane=Plane.AXIAL, slice_index=0).boxes

    assert [(b.x1_px, b.y1_px, b.x2_px, b.y2_px) for b in boxes] == [(100, 200, 300, 400)]


def test_medgemma_thinking_mode_markers():
    text = "<unused94>thought\nThe kidney lies lateral to the spine.<unused95>The left kidney."

    reply = split_reasoning(text, GEMMA.chat.thoughts)

    assert reply == Reply("The left kidney.", "The kidney lies lateral to the spine.")


def test_family_markers_are_not_read_for_other_families():
    text = "<unused94>thought\nhmm<unused95>The left kidney."

    assert split_reasoning(text).reasoning == ""


@pytest.mark.parametrize(
    "partial",
    [
        "<think>The liver is",
        "<unused94>thought\nThe liver",
        "I see the chest.\nFinal Answer:",
    ],
)
def test_an_unfinished_thought_is_still_thinking(partial):
    reply = split_reasoning(partial, GEMMA.chat.thoughts)

    assert reply.thinking and reply.answer == "" and reply.reasoning


def test_a_closing_marker_alone_ends_a_thought_opened_by_the_template():
    assert split_reasoning("the liver is large</think>The liver.") == Reply(
        "The liver.", "the liver is large"
    )


def test_plain_answers_are_left_alone():
    text = "<ref>liver</ref><box>(1,2),(3,4)</box>"

    assert split_reasoning(text) == Reply(text)
    assert split_reasoning(None) == Reply("")  # type: ignore[arg-type]


def test_long_junk_is_linear():
    junk = "<think>" + "<answer>Final Answer: " * 50_000
    started = time.perf_counter()
    split_reasoning(junk, GEMMA.chat.thoughts)
    split_reasoning(junk.replace("<think>", ""), GEMMA.chat.thoughts)
    assert time.perf_counter() - started < 2.0
