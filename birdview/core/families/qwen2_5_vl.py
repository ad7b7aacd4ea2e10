"""Qwen2.5-VL (Lingshu, MedVision-style detectors): fenced ``bbox_2d`` JSON, x first, in
pixels of the processor's resized image (not the 0–1000 grid)."""

from __future__ import annotations

from birdview.core.box_codecs import BoxCodec
from birdview.core.families import _qwen
from birdview.core.families._family import ProcessorRecipe, TinySpec

_PATCH = 14


def _patch(spec: TinySpec) -> int:
    return spec.patch_size or _PATCH


def _config(spec: TinySpec, ids):
    text = _qwen.text_config(spec, ids, bos_token_id=ids["<|endoftext|>"])
    # Qwen2.5-VL's attention windows are 4 × 4 merged tokens (112 px at its 14 px patches).
    window = 4 * spec.merge_size * _patch(spec)
    vision = {
        **_qwen.vision_common(spec, _patch(spec)),
        "hidden_size": spec.vision_hidden,
        "intermediate_size": spec.vision_hidden * 2,
        "out_hidden_size": spec.text_hidden,
        "window_size": window,
        "fullatt_block_indexes": [spec.vision_depth - 1],
    }
    return _qwen.model_config(spec, ids, text, vision)


def _processor(spec: TinySpec) -> ProcessorRecipe:
    return _qwen.processor("Qwen2_5_VLProcessor", "Qwen2VLVideoProcessor", spec, _patch(spec))


FAMILY = _qwen.family(
    key="qwen2_5_vl",
    title="Qwen2.5-VL (Lingshu)",
    model_types=("qwen2_5_vl",),
    codec=BoxCodec("qwen2_5_vl", "json", relative=False),
    projector_parts=("merger",),
    tiny=_qwen.tiny(_config, _processor),
)
