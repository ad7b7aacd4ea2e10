"""Qwen3-VL: fenced ``bbox_2d`` JSON, x first, on the 0–1000 grid."""

from __future__ import annotations

from birdview.core.box_codecs import BoxCodec
from birdview.core.families import _qwen
from birdview.core.families._family import (
    Family,
    ImageRule,
    Packing,
    ProcessorRecipe,
    TinyRecipe,
    TinySpec,
)

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
    patch = _patch(spec)
    return ProcessorRecipe(
        "Qwen3VLProcessor",
        {
            "image_processor": (
                "Qwen2VLImageProcessor",
                _qwen.image_kwargs(spec, patch, **_MEAN_STD),
            ),
            "video_processor": ("Qwen3VLVideoProcessor", _qwen.video_kwargs(spec, patch)),
        },
    )


FAMILY = Family(
    key="qwen3_vl",
    title="Qwen3-VL",
    model_types=("qwen3_vl", "qwen3_vl_moe"),
    codec=BoxCodec("qwen3_vl", "json", relative=True),
    chat=_qwen.CHATML,
    image=ImageRule(resize="smart", smart_resize=_qwen.SMART_RESIZE),
    unquantised=_qwen.UNQUANTISED,
    vision_parts=_qwen.VISION_PARTS,
    projector_parts=("merger", "deepstack_merger_list"),
    packing=Packing(position_function="get_rope_index"),
    tiny=TinyRecipe(
        special_tokens=_qwen.SPECIAL_TOKENS,
        named_tokens=_qwen.NAMED_TOKENS,
        chat_template=_qwen.CHAT_TEMPLATE,
        config=_config,
        processor=_processor,
        generation=_qwen.generation_ids,
    ),
    pixel_keys=("pixel_values", "image_grid_thw"),
)
