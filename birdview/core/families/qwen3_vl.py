"""Qwen3-VL: fenced ``bbox_2d`` JSON, x first, on the 0–1000 grid."""

from __future__ import annotations

from birdview.core.box_codecs import BoxCodec
from birdview.core.families import _qwen
from birdview.core.families._family import ProcessorRecipe, TinySpec

_PATCH = 16
_MEAN_STD = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}


def _patch(spec: TinySpec) -> int:
    return spec.patch_size or _PATCH


def _config(spec: TinySpec, ids):
    head_dim = spec.text_hidden // spec.text_heads
    text = _qwen.text_config(spec, ids, head_dim=head_dim)
    text["rope_parameters"] = {**text["rope_parameters"], "mrope_interleaved": True}
    vision = {
        **_qwen.vision_common(spec, _patch(spec)),
        "hidden_size": spec.vision_hidden,
        "intermediate_size": spec.vision_hidden * 2,
        "out_hidden_size": spec.text_hidden,
        "num_position_embeddings": 256,
        "deepstack_visual_indexes": [spec.vision_depth - 1],
    }
    return _qwen.model_config(spec, ids, text, vision)


def _processor(spec: TinySpec) -> ProcessorRecipe:
    return _qwen.processor(
        "Qwen3VLProcessor", "Qwen3VLVideoProcessor", spec, _patch(spec), **_MEAN_STD
    )


FAMILY = _qwen.family(
    key="qwen3_vl",
    title="Qwen3-VL",
    model_types=("qwen3_vl", "qwen3_vl_moe"),
    codec=BoxCodec("qwen3_vl", "json", relative=True),
    projector_parts=("merger", "deepstack_merger_list"),
    tiny=_qwen.tiny(_config, _processor),
)
