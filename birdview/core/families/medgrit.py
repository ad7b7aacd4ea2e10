"""Qwen-VL v1 (BiRD's base, ``model_type`` "qwen"): Med-GRIT's own ``<ref>``/``<box>`` tags
on the 0–1000 grid. Its checkpoints ship their own Python code, refused unless allowed."""

from __future__ import annotations

from birdview.core.box_codecs import MEDGRIT
from birdview.core.families import _qwen
from birdview.core.families._family import ChatMarkup, Family, ImageRule, Packing

FAMILY = Family(
    key="medgrit",
    title="Qwen-VL v1 (BiRD, Med-GRIT)",
    model_types=("qwen", "qwen_vl", "medgrit"),
    codec=MEDGRIT,
    chat=ChatMarkup(
        assistant_header=_qwen.CHATML.assistant_header,
        end_of_turn=_qwen.CHATML.end_of_turn,
        stop_tokens=_qwen.CHATML.stop_tokens,
    ),
    image=ImageRule(resize="fixed"),
    unquantised=("transformer.visual", "lm_head"),
    vision_parts=("visual.",),
    projector_parts=("attn_pool",),
    language_model="transformer",
    packing=Packing(refusal="Qwen-VL v1 runs remote code that takes no packed positions"),
    remote_code=True,
)
