"""What a model family declares: the `Family` record and its parts.

Everything here is data (strings, numbers, small pure functions); nothing imports torch or
transformers. Where the model stack must be called (building a tiny model, resizing the way a
processor does), a family names the transformers class or function as a string and the caller
in `birdview.inference` or `trainer` looks it up, so `core` stays free of the model stack.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from birdview.core.box_codecs import BoxCodec

__all__ = [
    "ChatMarkup",
    "Family",
    "Generation",
    "ImageRule",
    "Packing",
    "ProcessorRecipe",
    "TinyRecipe",
    "TinySpec",
]


@dataclass(frozen=True)
class ChatMarkup:
    """How the family's chat template marks turns.

    Attributes:
        assistant_header: the text that opens an answer in a rendered chat (training learns
            from what follows it).
        end_of_turn: the token that closes an answer (learned with it).
        stop_tokens: generation stops at any of these; they are removed from answers.
        thoughts: (opening, closing) markers of reasoning that this family writes besides
            the common ``<think>``…``</think>``.
    """

    assistant_header: str
    end_of_turn: str
    stop_tokens: tuple[str, ...]
    thoughts: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ImageRule:
    """How an image is prepared before the processor, and how the processor sizes it.

    Attributes:
        pad_to_square: pad the image to a centred square of its longer side (black) first.
        resize: "smart" — the processor keeps the aspect ratio within pixel bounds at a patch
            multiple (``smart_resize`` names the transformers function that computes it);
            "fixed" — the processor's ``size`` (height, width) whatever the input.
        smart_resize: "module:function" of transformers' resize rule, for "smart".
    """

    pad_to_square: bool = False
    resize: str = "smart"
    smart_resize: str = ""


@dataclass(frozen=True)
class Packing:
    """Whether conversations can share a training row, and the model's position function.

    Attributes:
        position_function: the attribute of a model module that gives a conversation's
            position ids ("get_rope_index" for multimodal RoPE); "" when packing is refused.
        refusal: why packing is refused, when it is.
    """

    position_function: str = ""
    refusal: str = ""


@dataclass(frozen=True)
class Generation:
    """Decoding defaults.

    Attributes:
        max_new_tokens: the budget when a question does not set one; 0 keeps BiRD's (80,
            100 for whole-image analysis).
        reasoning_max_new_tokens: the budget when the checkpoint thinks before answering.
    """

    max_new_tokens: int = 0
    reasoning_max_new_tokens: int = 1024


@dataclass(frozen=True)
class TinySpec:
    """Sizes of a tiny model; the defaults give a few million parameters.

    ``min_pixels``/``max_pixels`` bound an aspect-keeping processor's resized image;
    ``image_size`` is a fixed-size processor's side. ``patch_size`` 0 keeps the family's own;
    ``merge_size`` is the side of the patch square merged into one image token."""

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
    image_size: int = 64


@dataclass(frozen=True)
class ProcessorRecipe:
    """A processor as transformers class names and keyword arguments.

    ``parts`` maps each constructor argument of ``processor_class`` (besides the tokenizer
    and chat template) to (class name, kwargs); ``kwargs`` are its other arguments."""

    processor_class: str
    parts: Mapping[str, tuple[str, Mapping[str, Any]]]
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TinyRecipe:
    """What `birdview-train tiny` builds for a family.

    Attributes:
        special_tokens: the tokenizer's special tokens, in id order.
        named_tokens: tokenizer attributes → token ("eos_token": "<|im_end|>", ...).
        chat_template: the Jinja chat template.
        config: (spec, token ids by text) → keyword arguments of
            ``AutoConfig.for_model(model_type, ...)``.
        processor: spec → the processor's recipe.
        generation: token ids by text → generation-config values (eos, pad, bos ids).
    """

    special_tokens: tuple[str, ...]
    named_tokens: Mapping[str, str]
    chat_template: str
    config: Callable[[TinySpec, Mapping[str, int]], dict[str, Any]]
    processor: Callable[[TinySpec], ProcessorRecipe]
    generation: Callable[[Mapping[str, int]], dict[str, Any]]


@dataclass(frozen=True)
class Family:
    """Everything family-specific about a kind of checkpoint.

    Attributes:
        key: the registry key (``config.model_type`` of its main model type).
        title: a name for people ("Qwen2.5-VL (Lingshu)").
        model_types: every ``config.model_type`` that belongs to the family.
        codec: how it writes boxes, both ways.
        chat: its turn markup.
        image: how images are prepared and sized.
        unquantised: module paths (as ``named_modules()`` prints them) kept in full precision
            under nf4/int8: the vision tower, its projector, the output head. Full paths
            matter: transformers 5 matches a skip entry from the start of a module's name.
        vision_parts: parameter-name fragments of the vision encoder.
        projector_parts: parameter-name fragments of the projector into the language model.
        language_model: the module-name fragment of the language model (LoRA targets).
        packing: whether training may pack conversations, and how positions are made.
        generation: decoding defaults.
        tiny: what `birdview-train tiny` builds; None when it builds none.
        remote_code: the checkpoints need their own Python code (refused unless allowed).
        pixel_keys: the processor's image outputs a training batch carries.
    """

    key: str
    title: str
    model_types: tuple[str, ...]
    codec: BoxCodec
    chat: ChatMarkup
    image: ImageRule
    unquantised: tuple[str, ...]
    vision_parts: tuple[str, ...]
    projector_parts: tuple[str, ...]
    language_model: str = "language_model"
    packing: Packing = field(default_factory=Packing)
    generation: Generation = field(default_factory=Generation)
    tiny: TinyRecipe | None = None
    remote_code: bool = False
    pixel_keys: tuple[str, ...] = ("pixel_values",)
