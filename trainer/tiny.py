"""A tiny, randomly initialised Qwen-VL-family checkpoint, built from scratch on this machine.

No hub download exists here, so tests and the demo need a model that is made locally: a few
million parameters (text hidden 256 × 4 layers, vision hidden 128 × depth 2, as measured in
LEARNING.md), a byte-level BPE tokenizer trained on a small built-in corpus that carries the
family's special tokens, the family's image, video and processor classes, and a ChatML chat
template. The folder it writes opens like a real checkpoint::

    processor = AutoProcessor.from_pretrained(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder)

The same seed gives the same weights and the same tokenizer.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FAMILIES", "SPECIAL_TOKENS", "TinySpec", "build_tiny", "chat_template"]

logger = logging.getLogger(__name__)

FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")

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

_CORPUS = (
    "Where is the liver located in the image? The liver is located at the box.",
    "What anatomical structure is present at the region? Can you describe the content within?",
    "What can you interpret from the overall image? This region contains the lumbar vertebra.",
    "liver spleen kidney left right pancreas stomach aorta heart lung lungs brain tumor lesion "
    "cyst bone hip sacrum vertebra femur bladder prostate gallbladder colon duodenum esophagus",
    "CT MR MRI X-ray PET ultrasound endoscopy dermoscopy fundus axial coronal sagittal slice",
    "0 1 2 3 4 5 6 7 8 9 10 100 1000 (0,0),(1000,1000) (123,456),(789,999)",
    '```json\n[\n\t{"bbox_2d": [12, 345, 678, 901], "label": "liver"}\n]\n```',
    "<ref>liver</ref><box>(120,340),(560,780)</box> not present in the image.",
    "You are a helpful assistant. user assistant system Picture 1: The image shows",
)

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


def chat_template() -> str:
    """ChatML with Qwen-VL image placeholders; reads Hugging Face chat messages whose content
    is a string or a list of {"type": "image"} / {"type": "text", "text": ...} items."""
    return CHAT_TEMPLATE


@dataclass(frozen=True)
class TinySpec:
    """Sizes of a tiny model; the defaults give about 5 M parameters.

    ``min_pixels``/``max_pixels`` bound the processor's resized image (few image tokens).
    ``patch_size`` 0 keeps the family's own (16 for Qwen3-VL, 14 before); ``merge_size`` is the
    side of the patch square merged into one image token (2 in every released model)."""

    text_hidden: int = 256
    text_layers: int = 4
    text_heads: int = 4
    text_kv_heads: int = 2
    vision_hidden: int = 128
    vision_depth: int = 2
    vision_heads: int = 4
    vocab_size: int = 384
    patch_size: int = 0
    merge_size: int = 2
    min_pixels: int = 32 * 32
    max_pixels: int = 256 * 256


def build_tiny(
    family: str, out_dir: str | os.PathLike, *, seed: int = 0, spec=None, dtype: str = "float32"
) -> Path:
    """Write a tiny ``family`` checkpoint (safetensors, processor, tokenizer) to ``out_dir``.

    A larger ``spec`` (and ``dtype="bfloat16"``) gives random models of realistic size for
    memory and speed checks on a GPU.

    Raises:
        ValueError: ``family`` is not one of `FAMILIES`, or ``out_dir`` is a file.
    """
    if family not in FAMILIES:
        raise ValueError(
            f"Unable to build a tiny model as family {family!r} is not one of {list(FAMILIES)}"
        )
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise ValueError(
            f"Unable to build a tiny model in '{out_dir}' as it is a file, not a folder"
        )
    import torch
    from transformers import AutoModelForImageTextToText

    spec = spec or TinySpec()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(spec.vocab_size)
    processor = _processor(family, tokenizer, spec)
    config = _config(family, tokenizer, spec)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config, dtype=getattr(torch, dtype))
    _set_generation_ids(model, tokenizer)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    logger.info("built a tiny %s model: %.1f M parameters", family, n_params / 1e6)
    return out


def _train_tokenizer(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(_CORPUS) * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=[
            t for t in SPECIAL_TOKENS if t not in ("<|im_end|>", "<|endoftext|>")
        ],
        chat_template=CHAT_TEMPLATE,
        padding_side="left",
        model_max_length=4096,
    )


def _processor(family: str, tokenizer, spec: TinySpec):
    from transformers import Qwen2VLImageProcessor

    patch = _patch_size(family, spec)
    merge = spec.merge_size
    mean_std = {}
    if family == "qwen3_vl":
        mean_std = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
    pixels = {"min_pixels": spec.min_pixels, "max_pixels": spec.max_pixels}
    image_processor = Qwen2VLImageProcessor(
        patch_size=patch, merge_size=merge, temporal_patch_size=2, **pixels, **mean_std
    )
    if family == "qwen3_vl":
        from transformers import Qwen3VLProcessor, Qwen3VLVideoProcessor

        video = Qwen3VLVideoProcessor(patch_size=patch, merge_size=merge, temporal_patch_size=2)
        return Qwen3VLProcessor(image_processor, tokenizer, video, chat_template=CHAT_TEMPLATE)
    from transformers import Qwen2VLVideoProcessor

    video = Qwen2VLVideoProcessor(patch_size=patch, merge_size=merge, temporal_patch_size=2)
    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLProcessor

        return Qwen2_5_VLProcessor(image_processor, tokenizer, video, chat_template=CHAT_TEMPLATE)
    from transformers import Qwen2VLProcessor

    return Qwen2VLProcessor(image_processor, tokenizer, video, chat_template=CHAT_TEMPLATE)


def _config(family: str, tokenizer, spec: TinySpec):
    from transformers import AutoConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    head_dim = spec.text_hidden // spec.text_heads
    rope = {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": _mrope(head_dim)}
    if family == "qwen3_vl":
        rope["mrope_interleaved"] = True
    text = {
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
    }
    if family == "qwen3_vl":
        text["head_dim"] = head_dim
    else:
        text["bos_token_id"] = ids["<|endoftext|>"]
    return AutoConfig.for_model(
        family,
        text_config=text,
        vision_config=_vision(family, spec),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )


def _mrope(head_dim: int) -> list[int]:
    """Temporal, height and width sections of the rotary half-dimension (Qwen: 16/24/24)."""
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


def _patch_size(family: str, spec: TinySpec) -> int:
    return spec.patch_size or (16 if family == "qwen3_vl" else 14)


def _vision(family: str, spec: TinySpec) -> dict:
    common = {
        "depth": spec.vision_depth,
        "num_heads": spec.vision_heads,
        "spatial_merge_size": spec.merge_size,
        "temporal_patch_size": 2,
        "patch_size": _patch_size(family, spec),
    }
    if family == "qwen2_vl":
        return {
            **common,
            "embed_dim": spec.vision_hidden,
            "hidden_size": spec.text_hidden,
            "mlp_ratio": 2,
        }
    vision = {
        **common,
        "hidden_size": spec.vision_hidden,
        "intermediate_size": spec.vision_hidden * 2,
        "out_hidden_size": spec.text_hidden,
    }
    if family == "qwen2_5_vl":
        last = spec.vision_depth - 1
        # Qwen2.5-VL's windows are 4 × 4 merged tokens (112 px at its 14 px patches)
        window = 4 * spec.merge_size * _patch_size(family, spec)
        return {**vision, "window_size": window, "fullatt_block_indexes": [last]}
    return {
        **vision,
        "num_position_embeddings": 256,
        "deepstack_visual_indexes": [spec.vision_depth - 1],
    }


def _set_generation_ids(model, tokenizer) -> None:
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    model.generation_config.eos_token_id = [end, pad]
    model.generation_config.pad_token_id = pad
    model.generation_config.bos_token_id = pad
    model.generation_config.do_sample = False
