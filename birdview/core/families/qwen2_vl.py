"""Qwen2-VL: boxes as special-token tags on the 0–1000 grid, x first."""

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

_PATCH = 14


def _patch(spec: TinySpec) -> int:
    return spec.patch_size or _PATCH


def _config(spec: TinySpec, ids):
    text = _qwen.text_config(spec, ids, bos_token_id=ids["<|endoftext|>"])
    vision = {
        **_qwen.vision_common(spec, _patch(spec)),
        "embed_dim": spec.vision_hidden,
        "hidden_size": spec.text_hidden,
        "mlp_ratio": 2,
    }
    return _qwen.model_config(spec, ids, text, vision)


def _processor(spec: TinySpec) -> ProcessorRecipe:
    patch = _patch(spec)
    return ProcessorRecipe(
        "Qwen2VLProcessor",
        {
            "image_processor": ("Qwen2VLImageProcessor", _qwen.image_kwargs(spec, patch)),
            "video_processor": ("Qwen2VLVideoProcessor", _qwen.video_kwargs(spec, patch)),
        },
    )


FAMILY = Family(
    key="qwen2_vl",
    title="Qwen2-VL",
    model_types=("qwen2_vl",),
    codec=BoxCodec("qwen2_vl", "token_tags", relative=True),
    chat=_qwen.CHATML,
    image=ImageRule(resize="smart", smart_resize=_qwen.SMART_RESIZE),
    unquantised=_qwen.UNQUANTISED,
    vision_parts=_qwen.VISION_PARTS,
    projector_parts=("merger",),
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
