"""The model card: what a checkpoint was trained on, and which family defaults it changes.

A checkpoint folder may hold ``birdview.json``; its ``"card"`` object is the card::

    {"card": {
        "schema": 1,
        "name": "Liver finder",
        "description": "Qwen2.5-VL-7B fine-tuned on abdominal CT",
        "family": "<registry key>",                     (optional: overrides config.json)
        "trained_on": {"modalities": ["CT"], "body_regions": ["abdomen"],
                       "structures": ["liver", "spleen"], "image_kinds": ["axial slice"]},
        "overrides": {
            "prompts": {"VG": "Find {target}.", "RO": "What is at {region}?"},
            "box": {"style": "json", "json_key": "bbox_2d", "order": "xy",
                    "relative": true, "pad_to_square": false},
            "pad_to_square": false,
            "generation": {"max_new_tokens": 256, "reasoning": false, "history": true}}}}

Every field but ``name`` may be left out; an override left out keeps the family's default.
The same file holds, beside ``"card"``, what ``birdview-train fit`` records about the run
(``"format": "birdview-checkpoint"``, recipe, data, metrics); the card never reads those, and
`write_card` keeps them. A file written by hand holds only ``"card"``.

Reading is strict: unknown keys, wrong types, NaN, files over `MAX_CARD_FILE_BYTES` and
families the registry lacks are refused in one line that names the file and the field. The
check `card_warnings` says in plain words when a study or a question lies outside what the
card says the model was trained on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from birdview.core import _card_json
from birdview.core import _card_words as words
from birdview.core._card_checks import _Invalid
from birdview.core._card_json import kind
from birdview.core._card_parts import SCHEMA, BoxConvention, ModelCard, Overrides, TrainedOn
from birdview.core.files import write_atomic

__all__ = [
    "CARD_FILE",
    "MAX_CARD_FILE_BYTES",
    "SCHEMA",
    "BoxConvention",
    "ModelCard",
    "Overrides",
    "TrainedOn",
    "card_for_checkpoint",
    "card_warnings",
    "read_card",
    "write_card",
]

CARD_FILE = "birdview.json"
# The trainer's record beside the card carries the data card (case lists, sources): a large
# build's is a few hundred KB; a card alone is a few KB.
MAX_CARD_FILE_BYTES = 4 * 1024**2
_TRAINER_FORMAT = "birdview-checkpoint"


# -- reading and writing --------------------------------------------------------------------


def read_card(folder: str | os.PathLike) -> ModelCard | None:
    """The card in ``folder/birdview.json``; None when there is no such file or it holds no
    card (a checkpoint trained before cards existed).

    Raises:
        ValueError: the file cannot be read, is not a JSON object, is larger than
            `MAX_CARD_FILE_BYTES`, or its card has unknown keys, wrong types, NaN or an
            unknown family; one line naming the file and the field.
    """
    path = Path(folder) / CARD_FILE
    data = _card_json.read_object(path, MAX_CARD_FILE_BYTES)
    if data is None:
        return None
    if data.get("format") != _TRAINER_FORMAT:
        extra = sorted(set(data) - {"card"})
        if extra:
            raise ValueError(
                f"Unable to read '{path}' as key {extra[0]!r} is not known there; a card's "
                'fields belong inside its "card" object'
            )
    if "card" not in data:
        return None
    if not isinstance(data["card"], dict):
        raise ValueError(
            f"Unable to read '{path}' as card must be an object, not {kind(data['card'])}"
        )
    try:
        return _card_from_dict(data["card"])
    except _Invalid as exc:
        raise ValueError(f"Unable to read '{path}' as card.{exc.reason}") from exc


def card_for_checkpoint(
    model_dir: str | os.PathLike, adapter_dir: str | os.PathLike | None = None
) -> ModelCard | None:
    """The card that speaks for a loaded model: the adapter's when it has one (it says what
    the fine-tune learnt), else the checkpoint's; None when neither has one.

    Raises:
        ValueError: the card that would speak cannot be read (as `read_card`).
    """
    for folder in (adapter_dir, model_dir):
        card = read_card(folder) if folder else None
        if card is not None:
            return card
    return None


def write_card(folder: str | os.PathLike, card: ModelCard) -> Path:
    """Put ``card`` into ``folder/birdview.json`` atomically, keeping whatever else the file
    holds (the trainer's record); returns the file's path.

    Raises:
        ValueError: a birdview.json is there but cannot be read (it is left as it is).
        OSError: the file could not be written.
    """
    path = Path(folder) / CARD_FILE
    try:
        existing = _card_json.read_object(path, MAX_CARD_FILE_BYTES) or {}
    except ValueError as exc:
        raise ValueError(f"{exc}; the card was not written, so as not to lose it") from exc
    data = {"card": card.to_dict(), **{k: v for k, v in existing.items() if k != "card"}}
    text = json.dumps(data, indent=2, ensure_ascii=False, default=float) + "\n"
    write_atomic(path, text, mode=0o666)
    return path


# -- the card object, from JSON -------------------------------------------------------------

_CARD_KEYS = ("schema", "name", "description", "family", "trained_on", "overrides")
_TRAINED_KEYS = ("modalities", "body_regions", "structures", "image_kinds")
_OVERRIDE_KEYS = ("prompts", "box", "pad_to_square", "generation")
_BOX_KEYS = ("style", "json_key", "order", "relative", "pad_to_square")
_GENERATION_KEYS = ("max_new_tokens", "reasoning", "history")


def _card_from_dict(data: dict[str, Any]) -> ModelCard:
    """A card from birdview.json's ``"card"`` object (raises `_Invalid`)."""
    card = _object(data, "", _CARD_KEYS)
    if "name" not in card:
        raise _Invalid("name is missing")
    schema = card.get("schema", SCHEMA)
    if isinstance(schema, bool) or not isinstance(schema, int):
        raise _Invalid(f"schema must be a whole number, not {kind(schema)}")
    trained = _object(card.get("trained_on", {}), "trained_on", _TRAINED_KEYS)
    family = card.get("family")
    if family is not None and not isinstance(family, str):
        raise _Invalid(f"family must be a string, not {kind(family)}")
    return ModelCard(
        name=card["name"],
        description=card.get("description", ""),
        family=family,
        trained_on=TrainedOn(**{key: trained.get(key, ()) for key in _TRAINED_KEYS}),
        overrides=_overrides_from(card.get("overrides", {})),
        schema=schema,
    )


def _overrides_from(data: object) -> Overrides:
    overrides = _object(data, "overrides", _OVERRIDE_KEYS)
    prompts = _object(overrides.get("prompts", {}), "overrides.prompts", None)
    box = _object(overrides.get("box", {}), "overrides.box", _BOX_KEYS)
    generation = _object(overrides.get("generation", {}), "overrides.generation", _GENERATION_KEYS)
    tokens = generation.get("max_new_tokens")
    if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int)):
        raise _Invalid(
            f"overrides.generation.max_new_tokens must be a whole number, not {kind(tokens)}"
        )
    for key, value in box.items():
        if key in ("style", "json_key", "order") and not isinstance(value, str):
            raise _Invalid(f"overrides.box.{key} must be a string, not {kind(value)}")
    return Overrides(
        prompts=prompts,
        box=BoxConvention(**box),
        pad_to_square=overrides.get("pad_to_square"),
        max_new_tokens=tokens,
        reasoning=generation.get("reasoning"),
        history=generation.get("history"),
    )


def _object(value: object, where: str, keys: tuple[str, ...] | None) -> dict[str, Any]:
    """``value`` checked to be an object whose keys are among ``keys`` (None: any keys);
    ``where`` is its path in the card ("" for the card itself)."""
    if not isinstance(value, dict):
        raise _Invalid(f"{where} must be an object, not {kind(value)}")
    for key in value:
        if keys is not None and key not in keys:
            path = f"{where}.{key}" if where else key
            raise _Invalid(f"{path} is not a known key (known: {', '.join(keys)})")
    return value


# -- the check ------------------------------------------------------------------------------


def card_warnings(
    card: ModelCard | None, *, modality: str, question: str, body_part: str = ""
) -> list[str]:
    """Plain-language warnings when the study (its ``modality``, DICOM code or word, and
    ``body_part``, e.g. Body Part Examined) or the structure ``question`` asks about lies
    outside what ``card`` says the model was trained on. None when the card does not say, the
    study does not say ("OT", "PARTIALBODY") or the question names no structure this can
    recognise; an empty list when all is within."""
    if card is None:
        return []
    trained = card.trained_on
    found = [
        words.modality_warning(trained.modalities, modality),
        words.body_part_warning(trained.body_regions, body_part),
        words.structure_warning(trained.structures, question),
    ]
    return [warning for warning in found if warning]
