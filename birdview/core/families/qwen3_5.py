"""Qwen3.5: Qwen3-VL's box text (``bbox_2d`` JSON on the 0–1000 grid) on a language model
with linear-attention layers, which are not packed in training."""

from __future__ import annotations

from birdview.core.box_codecs import BoxCodec
from birdview.core.families import _qwen
from birdview.core.families._family import Packing

FAMILY = _qwen.family(
    key="qwen3_5",
    title="Qwen3.5",
    model_types=("qwen3_5", "qwen3_5_moe"),
    codec=BoxCodec("qwen3_5", "json", relative=True),
    projector_parts=("merger", "deepstack_merger_list"),
    packing=Packing(
        refusal=(
            "its linear-attention layers carry their state across a packed row on the torch "
            "path; set data.pack=false"
        )
    ),
)
