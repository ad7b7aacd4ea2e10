"""Qwen2-VL: boxes as special-token tags on the 0–1000 grid, x first."""

from __future__ import annotations

from birdview.core.box_codecs import BoxCodec
from birdview.core.families import _qwen
from birdview.core.families._family import ProcessorRecipe, TinySpec

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
    return _qwen.processor("Qwen2VLProcessor", "Qwen2VLVideoProcessor", spec, _patch(spec))


FAMILY = _qwen.family(
    key="qwen2_vl",
    title="Qwen2-VL",
    model_types=("qwen2_vl",),
    codec=BoxCodec("qwen2_vl", "token_tags", relative=True),
    projector_parts=("merger",),
    tiny=_qwen.tiny(_config, _processor),
)
