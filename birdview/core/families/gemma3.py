"""Gemma 3 (MedGemma 1.5 4B, MedGemma 4B, MedGemma 27B multimodal, Gemma 3 4B/12B/27B).

Boxes, as MedGemma's localization notebooks show them: a fenced JSON list of
``{"box_2d": [y0, x0, y1, x1], "label": ...}``, y first, on the 0–1000 grid of the image
padded to a centred square (the notebooks pad before the processor, so boxes map back
through the padding, not through the raw aspect ratio); often after free reasoning and a
``Final Answer:`` line. The SigLIP encoder sees a fixed 896 × 896 image (256 image tokens).

MedGemma 1.5's thinking mode wraps the thought in ``<unused94>thought … <unused95>``: ordinary
vocabulary tokens that ``skip_special_tokens`` keeps, so they are declared as thought markers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from birdview.core.box_codecs import BoxCodec
from birdview.core.families._family import (
    ChatMarkup,
    Family,
    Generation,
    ImageRule,
    Packing,
    ProcessorRecipe,
    TinyRecipe,
    TinySpec,
)

# The tiny model's side: the real 896 px at 14 px patches does not fit a 64 px image, so the
# tiny one takes 8 px patches and pools each 2 × 2 (``spec.merge_size``) into one image token,
# as the real projector pools 4 × 4 of its 64 × 64 patches into 256 tokens.
_TINY_PATCH = 8
_HALF = [0.5, 0.5, 0.5]
# Special tokens in the order of their ids in the real vocabulary (pad 0, eos 1, bos 2, ...).
_SPECIAL_TOKENS = (
    "<pad>",
    "<eos>",
    "<bos>",
    "<unk>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<start_of_image>",
    "<end_of_image>",
    "<image_soft_token>",
)
# The image tokens are named tokenizer attributes: Gemma3Processor reads boi_token, eoi_token
# and image_token from the tokenizer.
_NAMED_TOKENS = {
    "pad_token": "<pad>",
    "eos_token": "<eos>",
    "bos_token": "<bos>",
    "unk_token": "<unk>",
    "boi_token": "<start_of_image>",
    "eoi_token": "<end_of_image>",
    "image_token": "<image_soft_token>",
}

# Gemma 3's chat markup: a system message has no turn of its own but opens the first user
# turn, the assistant speaks as "model", an image is its begin-of-image token (the processor
# expands it) and texts are trimmed.
_CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- set state = namespace(preamble='', turns=messages) -%}"
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set system = messages[0]['content'] -%}"
    "{%- if system is not string -%}"
    "{%- set system = system | selectattr('type', 'equalto', 'text')"
    " | map(attribute='text') | join('\\n') -%}"
    "{%- endif -%}"
    "{%- set state.preamble = (system | trim) ~ '\\n\\n' -%}"
    "{%- set state.turns = messages[1:] -%}"
    "{%- endif -%}"
    "{%- for message in state.turns -%}"
    "{{- '<start_of_turn>' ~ ('model' if message['role'] == 'assistant' else message['role'])"
    " ~ '\\n' -}}"
    "{%- if loop.first -%}{{- state.preamble -}}{%- endif -%}"
    "{%- if message['content'] is string -%}{{- message['content'] | trim -}}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' or 'image' in item -%}{{- '<start_of_image>' -}}"
    "{%- elif item['type'] == 'text' -%}{{- item['text'] | trim -}}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}"
    "{{- '<end_of_turn>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<start_of_turn>model\\n' -}}{%- endif -%}"
)


def _patch(spec: TinySpec) -> int:
    return spec.patch_size or _TINY_PATCH


def _image_tokens(spec: TinySpec) -> int:
    """Image tokens per image: the patch grid pooled ``merge_size`` × ``merge_size``."""
    patches, merge = spec.image_size // _patch(spec), spec.merge_size
    if spec.image_size % _patch(spec) or patches % merge:
        raise ValueError(
            f"Unable to size a tiny Gemma 3 as a {spec.image_size} px image is not a whole "
            f"number of {_patch(spec)} px patches pooled {merge} × {merge}"
        )
    return (patches // merge) ** 2


def _layer_types(layers: int) -> list[str]:
    # The real models alternate five sliding-window layers with one global; a tiny one
    # alternates one and one, so both kinds run in a few layers.
    return ["full_attention" if i % 2 else "sliding_attention" for i in range(layers)]


def _text_config(spec: TinySpec, ids: Mapping[str, int]) -> dict[str, Any]:
    head_dim = spec.text_hidden // spec.text_heads
    return {
        "model_type": "gemma3_text",
        "vocab_size": spec.vocab_size,
        "hidden_size": spec.text_hidden,
        "intermediate_size": spec.text_hidden * 2,
        "num_hidden_layers": spec.text_layers,
        "num_attention_heads": spec.text_heads,
        "num_key_value_heads": spec.text_kv_heads,
        "head_dim": head_dim,
        "query_pre_attn_scalar": head_dim,
        "sliding_window": 4 * _image_tokens(spec),
        "layer_types": _layer_types(spec.text_layers),
        "max_position_embeddings": 4096,
        "rope_parameters": {
            "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1_000_000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
        },
        "pad_token_id": ids["<pad>"],
        "eos_token_id": ids["<eos>"],
        "bos_token_id": ids["<bos>"],
    }


def _vision_config(spec: TinySpec) -> dict[str, Any]:
    return {
        "model_type": "siglip_vision_model",
        "hidden_size": spec.vision_hidden,
        "intermediate_size": spec.vision_hidden * 2,
        "num_hidden_layers": spec.vision_depth,
        "num_attention_heads": spec.vision_heads,
        "image_size": spec.image_size,
        "patch_size": _patch(spec),
        "layer_norm_eps": 1e-6,
        "vision_use_head": False,
    }


def _config(spec: TinySpec, ids: Mapping[str, int]) -> dict[str, Any]:
    return {
        "text_config": _text_config(spec, ids),
        "vision_config": _vision_config(spec),
        "mm_tokens_per_image": _image_tokens(spec),
        "boi_token_index": ids["<start_of_image>"],
        "eoi_token_index": ids["<end_of_image>"],
        "image_token_index": ids["<image_soft_token>"],
        "tie_word_embeddings": True,
    }


def _processor(spec: TinySpec) -> ProcessorRecipe:
    side = {"height": spec.image_size, "width": spec.image_size}
    image = {"size": side, "image_mean": _HALF, "image_std": _HALF}
    return ProcessorRecipe(
        "Gemma3Processor",
        {"image_processor": ("Gemma3ImageProcessor", image)},
        {"image_seq_length": _image_tokens(spec)},
    )


def _generation(ids: Mapping[str, int]) -> dict[str, Any]:
    return {
        "eos_token_id": [ids["<end_of_turn>"], ids["<eos>"]],
        "pad_token_id": ids["<pad>"],
        "bos_token_id": ids["<bos>"],
    }


FAMILY = Family(
    key="gemma3",
    title="Gemma 3 (MedGemma)",
    model_types=("gemma3",),
    codec=BoxCodec(
        "gemma3", "json", relative=True, json_key="box_2d", order="yx", pad_to_square=True
    ),
    chat=ChatMarkup(
        assistant_header="<start_of_turn>model\n",
        end_of_turn="<end_of_turn>",
        stop_tokens=("<end_of_turn>", "<eos>"),
        thoughts=(("<unused94>", "<unused95>"),),
    ),
    image=ImageRule(pad_to_square=True, resize="fixed"),
    unquantised=("model.vision_tower", "model.multi_modal_projector", "lm_head"),
    vision_parts=("vision_tower.",),
    projector_parts=("multi_modal_projector.",),
    packing=Packing(
        refusal=(
            "Gemma 3 attends bidirectionally within each image through token_type_ids, "
            "which packed rows do not carry; set data.pack=false"
        )
    ),
    # A JSON list of boxes with labels, often after reasoning, outgrows BiRD's 80 tokens.
    generation=Generation(max_new_tokens=512, reasoning_max_new_tokens=2048),
    tiny=TinyRecipe(
        special_tokens=_SPECIAL_TOKENS,
        named_tokens=_NAMED_TOKENS,
        chat_template=_CHAT_TEMPLATE,
        config=_config,
        processor=_processor,
        generation=_generation,
    ),
    pixel_keys=("pixel_values",),
)
