"""What the Qwen-VL families share: ChatML, their special tokens, and a tiny model's parts.

Not a family: the modules beside it (one per family) take these pieces and add their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from birdview.core.box_codecs import BoxCodec
from birdview.core.families._family import (
    ChatMarkup,
    Family,
    ImageRule,
    Packing,
    ProcessorRecipe,
    TinyRecipe,
    TinySpec,
)

# Qwen2-VL's special tokens, in the order of their ids in the real vocabulary (151643...).
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
NAMED_TOKENS = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}

CHATML = ChatMarkup(
    assistant_header="<|im_start|>assistant\n",
    end_of_turn="<|im_end|>",
    stop_tokens=("<|im_end|>", "<|endoftext|>"),
)

# ChatML with Qwen-VL image placeholders; reads Hugging Face chat messages whose content is a
# string or a list of {"type": "image"} / {"type": "text", "text": ...} items.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "<|im_start|>{{ message['role'] + '\\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' or 'image' in item -%}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{%- elif item['type'] == 'video' or 'video' in item -%}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] }}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}"
    "{{ '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)

SMART_RESIZE = "transformers.models.qwen2_vl.image_processing_qwen2_vl:smart_resize"
UNQUANTISED = ("model.visual", "lm_head")
VISION_PARTS = ("visual.",)


def mrope_sections(head_dim: int) -> list[int]:
    """Temporal, height and width sections of the rotary half-dimension (Qwen: 16/24/24)."""
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


def text_config(spec: TinySpec, ids: Mapping[str, int], **extra: Any) -> dict[str, Any]:
    head_dim = spec.text_hidden // spec.text_heads
    rope = {
        "rope_type": "default",
        "rope_theta": 1_000_000.0,
        "mrope_section": mrope_sections(head_dim),
    }
    return {
        "vocab_size": spec.vocab_size,
        "hidden_size": spec.text_hidden,
        "intermediate_size": spec.text_hidden * 2,
        "num_hidden_layers": spec.text_layers,
        "num_attention_heads": spec.text_heads,
        "num_key_value_heads": spec.text_kv_heads,
        "max_position_embeddings": 4096,
        "rope_parameters": rope,
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        **extra,
    }


def model_config(
    spec: TinySpec, ids: Mapping[str, int], text: dict[str, Any], vision: dict[str, Any]
) -> dict[str, Any]:
    return {
        "text_config": text,
        "vision_config": vision,
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "tie_word_embeddings": False,
    }


def vision_common(spec: TinySpec, patch: int) -> dict[str, Any]:
    return {
        "depth": spec.vision_depth,
        "num_heads": spec.vision_heads,
        "spatial_merge_size": spec.merge_size,
        "temporal_patch_size": 2,
        "patch_size": patch,
    }


def image_kwargs(spec: TinySpec, patch: int, **extra: Any) -> dict[str, Any]:
    return {
        "patch_size": patch,
        "merge_size": spec.merge_size,
        "temporal_patch_size": 2,
        "min_pixels": spec.min_pixels,
        "max_pixels": spec.max_pixels,
        **extra,
    }


def video_kwargs(spec: TinySpec, patch: int) -> dict[str, Any]:
    return {"patch_size": patch, "merge_size": spec.merge_size, "temporal_patch_size": 2}


def generation_ids(ids: Mapping[str, int]) -> dict[str, Any]:
    end, pad = ids["<|im_end|>"], ids["<|endoftext|>"]
    return {"eos_token_id": [end, pad], "pad_token_id": pad, "bos_token_id": pad}


def processor(
    processor_class: str, video_class: str, spec: TinySpec, patch: int, **image_extra: Any
) -> ProcessorRecipe:
    """A Qwen-VL processor: Qwen2-VL's image processor and the family's video processor."""
    return ProcessorRecipe(
        processor_class,
        {
            "image_processor": ("Qwen2VLImageProcessor", image_kwargs(spec, patch, **image_extra)),
            "video_processor": (video_class, video_kwargs(spec, patch)),
        },
    )


def family(
    *,
    key: str,
    title: str,
    model_types: tuple[str, ...],
    codec: BoxCodec,
    projector_parts: tuple[str, ...],
    tiny: TinyRecipe | None = None,
    packing: Packing | None = None,
) -> Family:
    """A Qwen-VL family: ChatML, aspect-keeping resize, the tower under ``model.visual``."""
    return Family(
        key=key,
        title=title,
        model_types=model_types,
        codec=codec,
        chat=CHATML,
        image=ImageRule(resize="smart", smart_resize=SMART_RESIZE),
        unquantised=UNQUANTISED,
        vision_parts=VISION_PARTS,
        projector_parts=projector_parts,
        packing=packing or Packing(position_function="get_rope_index"),
        tiny=tiny,
        pixel_keys=("pixel_values", "image_grid_thw"),
    )


def tiny(config, make_processor) -> TinyRecipe:
    """A tiny Qwen-VL model's recipe: the shared tokens and template, the family's parts."""
    return TinyRecipe(
        special_tokens=SPECIAL_TOKENS,
        named_tokens=NAMED_TOKENS,
        chat_template=CHAT_TEMPLATE,
        config=config,
        processor=make_processor,
        generation=generation_ids,
    )
