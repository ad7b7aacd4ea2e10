"""A tiny, randomly initialised checkpoint of a registered model family, built on this machine.

No hub download exists here, so tests and the demo need a model that is made locally: a few
million parameters (text hidden 256 × 4 layers, vision hidden 128 × depth 2, the sizes
docs/LEARNING_PROOF.md trains), a byte-level BPE tokenizer trained on a small built-in corpus
that carries the family's special tokens, and the family's processor classes and chat template.
Everything family-specific comes from the family's `TinyRecipe` in `birdview.core.families`;
this module only puts the parts together. The folder it writes opens like a real checkpoint::

    processor = AutoProcessor.from_pretrained(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder)

The same seed gives the same weights and the same tokenizer.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path

from birdview.core import families
from birdview.core.families import Family, TinyRecipe, TinySpec

__all__ = ["FAMILIES", "TinySpec", "build_tiny"]

logger = logging.getLogger(__name__)

FAMILIES = families.tiny_families()

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

# Turns in one family's markup, learned only by a family whose tokens they name all: another
# family's tokenizer (and so its checkpoints' token ids) stays as it was before they existed.
_TURNS = (
    "<start_of_turn>user\nLocate the liver in this CT image. Give each box as box_2d."
    "<end_of_turn>\n<start_of_turn>model\n",
    '<start_of_turn>model\n```json\n[\n  {"box_2d": [345, 12, 901, 678], "label": "liver"}\n'
    "]\n```<end_of_turn>",
    "<start_of_turn>model\n<unused94>thought\nThe liver lies in the right upper abdomen."
    "<unused95>Final Answer: the liver is at the box.<end_of_turn>",
)
_TAG = re.compile(r"<[^<>\s]+>")


def build_tiny(
    family_key: str,
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    spec: TinySpec | None = None,
    dtype: str = "float32",
) -> Path:
    """Write a tiny checkpoint of family ``family_key`` (safetensors, processor, tokenizer)
    to ``out_dir``.

    A larger ``spec`` (and ``dtype="bfloat16"``) gives random models of realistic size for
    memory and speed checks on a GPU.

    Raises:
        ValueError: ``family_key`` is not one of `FAMILIES`, ``spec`` does not fit the family,
            or ``out_dir`` is a file.
    """
    if family_key not in FAMILIES:
        raise ValueError(
            f"Unable to build a tiny model as family {family_key!r} is not one of {list(FAMILIES)}"
        )
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise ValueError(
            f"Unable to build a tiny model in '{out_dir}' as it is a file, not a folder"
        )
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    family = families.get(family_key)
    recipe = family.tiny
    spec = spec or TinySpec()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ordinary = _ordinary_tokens(family)
    tokenizer = _train_tokenizer(recipe, ordinary, spec.vocab_size)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in (*recipe.special_tokens, *ordinary)}
    processor = _processor(recipe, tokenizer, spec)
    config = AutoConfig.for_model(family.model_types[0], **recipe.config(spec, ids))
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config, dtype=getattr(torch, dtype))
    _set_generation(model, recipe.generation(ids))
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    logger.info("built a tiny %s model: %.1f M parameters", family_key, n_params / 1e6)
    return out


def _ordinary_tokens(family: Family) -> tuple[str, ...]:
    """The family's thought markers that are not special tokens: whole tokens that decoding
    keeps under ``skip_special_tokens``, as in the real vocabulary."""
    markers = (m for pair in family.chat.thoughts for m in pair)
    return tuple(dict.fromkeys(m for m in markers if m not in family.tiny.special_tokens))


def _corpus(tokens: tuple[str, ...]) -> list[str]:
    """The built-in corpus and the turns whose tags are all in ``tokens``, split at those
    tokens so that the BPE learns the text between them, not pieces of the tokens."""
    known = set(tokens)
    turns = [t for t in _TURNS if set(_TAG.findall(t)) <= known]
    if not turns:
        return list(_CORPUS)
    split = re.compile("|".join(re.escape(t) for t in sorted(known, key=len, reverse=True)))
    return list(_CORPUS) + [piece for t in turns for piece in split.split(t) if piece]


def _train_tokenizer(recipe: TinyRecipe, ordinary: tuple[str, ...], vocab_size: int):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
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
        # the ordinary tokens come after training and must still fit the model's vocabulary
        vocab_size=vocab_size - len(ordinary),
        special_tokens=list(recipe.special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus((*recipe.special_tokens, *ordinary)) * 4, trainer=trainer)
    named = dict(recipe.named_tokens)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        **named,
        extra_special_tokens=[t for t in recipe.special_tokens if t not in named.values()],
        chat_template=recipe.chat_template,
        padding_side="left",
        model_max_length=4096,
    )
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in ordinary])
    return tokenizer


def _processor(recipe: TinyRecipe, tokenizer, spec: TinySpec):
    plan = recipe.processor(spec)
    parts = {arg: _transformers(name)(**kwargs) for arg, (name, kwargs) in plan.parts.items()}
    return _transformers(plan.processor_class)(
        tokenizer=tokenizer, chat_template=recipe.chat_template, **parts, **plan.kwargs
    )


def _transformers(name: str):
    """The class ``name`` of the transformers package (recipes name classes as text)."""
    import transformers

    found = getattr(transformers, name, None)
    if found is None:
        raise ValueError(
            f"Unable to build a tiny model as transformers {transformers.__version__} has no "
            f"{name!r}"
        )
    return found


def _set_generation(model, values: Mapping[str, object]) -> None:
    for key, value in values.items():
        setattr(model.generation_config, key, value)
    model.generation_config.do_sample = False
