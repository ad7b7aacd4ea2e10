"""The four BiRD tasks: question wording (Med-GRIT's), regions per family, chat messages."""

from __future__ import annotations

import pytest

from birdview.core import families
from birdview.core.box import Box
from birdview.core.geometry import Plane
from birdview.core.prompts import (
    Conversation,
    Task,
    Turn,
    analysis_question,
    caption_question,
    grounding_question,
    max_new_tokens,
    question_for,
    referring_question,
    to_messages,
)

BOX = Box(Plane.AXIAL, 4, 32, 29, 160, 145, label="sacrum")
SIZE = (320, 290)
REGION = {
    "medgrit": "<box>(100,100),(500,500)</box>",
    "qwen2_vl": "<|box_start|>(100,100),(500,500)<|box_end|>",
    "qwen2_5_vl": '{"bbox_2d": [64, 58, 320, 290]}',
    "qwen3_vl": '{"bbox_2d": [100, 100, 500, 500]}',
    "qwen3_5": '{"bbox_2d": [100, 100, 500, 500]}',
}


def test_tasks_have_medgrit_code_names():
    assert [t.code for t in Task] == ["VG", "RO", "GC", "MII"]
    assert Task("RO") is Task.ROC and Task("GC") is Task.RC and Task("MII") is Task.MIA
    assert [t.needs_region for t in Task] == [False, True, True, False]


def test_question_wording_matches_medgrit():
    assert grounding_question("left hip") == "Where is the left hip located in the image?"
    assert grounding_question("the  liver ") == "Where is the liver located in the image?"
    assert referring_question("<box>(1,2),(3,4)</box>") == (
        "What anatomical structure is present at the <box>(1,2),(3,4)</box>?"
    )
    assert caption_question("<box>(1,2),(3,4)</box>") == (
        "Can you describe the content within the <box>(1,2),(3,4)</box>?"
    )
    assert analysis_question() == "What can you interpret from the overall image?"
    with pytest.raises(ValueError, match="target is empty"):
        grounding_question("  ")


@pytest.mark.parametrize("family", sorted(REGION))
def test_regions_are_written_in_the_familys_format(family):
    model_size = (640, 580) if family == "qwen2_5_vl" else None
    kwargs = {"codec": family, "box": BOX, "image_size_px": SIZE, "model_size_px": model_size}
    region = REGION[family]
    assert question_for(Task.ROC, **kwargs) == referring_question(region)
    assert question_for("GC", **kwargs) == caption_question(region)
    assert "sacrum" not in question_for(Task.ROC, **kwargs)  # the label is the answer
    assert question_for(
        Task.RC, **{**kwargs, "codec": families.get(family).codec}
    ) == caption_question(region)


def test_question_for_grounding_and_analysis():
    common = {"codec": "qwen3_vl", "image_size_px": SIZE}
    assert question_for(Task.VG, target="spleen", **common) == grounding_question("spleen")
    assert question_for(Task.MIA, **common) == analysis_question()
    assert question_for(Task.MIA, box=BOX, **common) == analysis_question()


def test_question_for_says_what_is_missing():
    common = {"codec": "medgrit", "image_size_px": SIZE}
    with pytest.raises(ValueError, match="no target was given"):
        question_for(Task.VG, **common)
    with pytest.raises(ValueError, match="Unable to write a ROC question as no box was given"):
        question_for(Task.ROC, **common)
    with pytest.raises(ValueError, match="model family 'llava' as it is not one of"):
        question_for(Task.MIA, codec="llava", image_size_px=SIZE)
    with pytest.raises(ValueError, match="model_size_px is missing"):
        question_for(Task.RC, codec="qwen2_5_vl", box=BOX, image_size_px=SIZE)
    with pytest.raises(ValueError):
        question_for("XX", **common)


def test_max_new_tokens_follow_bird():
    assert [max_new_tokens(t) for t in Task] == [80, 80, 80, 100]
    assert max_new_tokens("MII") == 100


def test_first_question_carries_the_image():
    assert to_messages(Conversation(), "Where is the liver located in the image?") == [
        {
            "role": "user",
            "content": [
                {"type": "image"},
                {"type": "text", "text": "Where is the liver located in the image?"},
            ],
        }
    ]


def test_history_puts_the_image_only_in_the_first_turn():
    answer = "The liver is located at <ref>liver</ref><box>(1,2),(3,4)</box>."
    conversation = Conversation().with_turn(Turn("Where is the liver located?", answer, [BOX]))
    conversation = conversation.with_turn(Turn("What is at <box>(5,6),(7,8)</box>?", "Sacrum"))
    messages = to_messages(conversation, analysis_question())
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    images = [[part for part in m["content"] if part["type"] == "image"] for m in messages]
    assert [len(found) for found in images] == [1, 0, 0, 0, 0]
    texts = [m["content"][-1]["text"] for m in messages]
    assert texts == [
        "Where is the liver located?",
        answer,  # raw, markup included: the model reads its own format back
        "What is at <box>(5,6),(7,8)</box>?",
        "Sacrum",
        analysis_question(),
    ]
    assert conversation.turns[0].boxes == (BOX,)
    assert len(Conversation().turns) == 0 and len(conversation.turns) == 2
