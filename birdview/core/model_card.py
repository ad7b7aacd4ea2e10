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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from birdview.core import _card_json, families
from birdview.core import _card_words as words
from birdview.core._card_json import kind, show
from birdview.core.box_codecs import BoxCodec
from birdview.core.files import write_atomic
from birdview.core.prompts import Task

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
SCHEMA = 1
# The trainer's record beside the card carries the data card (case lists, sources): a large
# build's is a few hundred KB; a card alone is a few KB.
MAX_CARD_FILE_BYTES = 4 * 1024**2
_TRAINER_FORMAT = "birdview-checkpoint"
_STYLES = ("tags", "token_tags", "json")
_ORDERS = ("xy", "yx")
_JSON_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")
# What a task's question template must hold: where the target or the drawn region goes.
_PLACEHOLDERS = {"VG": "{target}", "RO": "{region}", "GC": "{region}", "MII": ""}
_MAX_TEXT = 500
_MAX_DESCRIPTION = 4000
_MAX_ITEMS = 2000
_MAX_NEW_TOKENS = 32768


class _Invalid(ValueError):
    """A wrong card field; ``reason`` starts with the field's path inside the card."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Unable to make a model card as {reason}")
        self.reason = reason


# -- the card -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainedOn:
    """What the model saw in training; an empty list means the card does not say.

    Attributes:
        modalities: "CT", "MR", "X-ray"... (DICOM codes and Med-GRIT keys are understood).
        body_regions: "abdomen", "chest"...
        structures: the label names it learned ("liver", "left kidney").
        image_kinds: "axial slice", "chest radiograph"...
    """

    modalities: tuple[str, ...] = ()
    body_regions: tuple[str, ...] = ()
    structures: tuple[str, ...] = ()
    image_kinds: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("modalities", "body_regions", "structures", "image_kinds"):
            object.__setattr__(self, name, _names(getattr(self, name), f"trained_on.{name}"))

    @property
    def says_nothing(self) -> bool:
        return not (self.modalities or self.body_regions or self.structures or self.image_kinds)

    def summary(self) -> str:
        """ "CT · abdomen · axial slice · 12 structures: liver, spleen, …" ("" when empty)."""
        parts = [
            words.listing(self.modalities),
            words.listing(self.body_regions),
            words.listing(self.image_kinds),
        ]
        if self.structures:
            count = len(self.structures)
            noun = "structure" if count == 1 else "structures"
            parts.append(f"{count} {noun}: {words.listing(self.structures, limit=8)}")
        return " · ".join(part for part in parts if part)


@dataclass(frozen=True)
class BoxConvention:
    """How a fine-tune writes boxes where it differs from its family (`BoxCodec` fields);
    None keeps the family's."""

    style: str | None = None
    json_key: str | None = None
    order: str | None = None
    relative: bool | None = None
    pad_to_square: bool | None = None

    def __post_init__(self) -> None:
        _one_of(self.style, _STYLES, "overrides.box.style")
        _one_of(self.order, _ORDERS, "overrides.box.order")
        if self.json_key is not None and not _JSON_KEY.match(str(self.json_key)):
            raise _Invalid(
                f"overrides.box.json_key must be a JSON key such as 'bbox_2d', not "
                f"{self.json_key!r}"
            )
        _optional_bool(self.relative, "overrides.box.relative")
        _optional_bool(self.pad_to_square, "overrides.box.pad_to_square")

    def changes(self) -> dict[str, Any]:
        """The fields that are set."""
        return {
            name: getattr(self, name)
            for name in ("style", "json_key", "order", "relative", "pad_to_square")
            if getattr(self, name) is not None
        }

    def apply(self, codec: BoxCodec) -> BoxCodec:
        """``codec`` with this convention's changes."""
        return replace(codec, **self.changes())


@dataclass(frozen=True)
class Overrides:
    """Family defaults a fine-tune changed.

    Attributes:
        prompts: (task code, question template) pairs; a template holds ``{target}`` (VG) or
            ``{region}`` (RO, GC) where the structure or the drawn box goes. A mapping is
            accepted and task names ("ROC", "RC", "MIA") become codes.
        box: the box convention.
        pad_to_square: pad the image to a square before the processor.
        max_new_tokens: the answer budget.
        reasoning: whether the checkpoint thinks before it answers.
        history: whether earlier turns of the conversation go with a question; False for a
            model taught on single questions, which a conversation's history only confuses.
    """

    prompts: tuple[tuple[str, str], ...] = ()
    box: BoxConvention = field(default_factory=BoxConvention)
    pad_to_square: bool | None = None
    max_new_tokens: int | None = None
    reasoning: bool | None = None
    history: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompts", _prompts(self.prompts))
        _optional_bool(self.pad_to_square, "overrides.pad_to_square")
        _optional_bool(self.reasoning, "overrides.generation.reasoning")
        _optional_bool(self.history, "overrides.generation.history")
        tokens = self.max_new_tokens
        if tokens is not None and (
            isinstance(tokens, bool)
            or not isinstance(tokens, int)
            or not 0 < tokens <= _MAX_NEW_TOKENS
        ):
            raise _Invalid(
                f"overrides.generation.max_new_tokens must be a whole number from 1 to "
                f"{_MAX_NEW_TOKENS}, not {tokens!r}"
            )

    def prompt(self, task: Task | str) -> str | None:
        """The question template for ``task``, or None when the family's wording stands."""
        code = Task(task).code if isinstance(task, Task) else _task_code(str(task), "")
        return dict(self.prompts).get(code)

    def summary(self) -> str:
        """What is changed, in a few words ("" when nothing is)."""
        parts = []
        if self.prompts:
            parts.append("question wording (" + ", ".join(code for code, _ in self.prompts) + ")")
        if self.box.changes():
            changed = ", ".join(f"{k} {v}" for k, v in self.box.changes().items())
            parts.append(f"box convention ({changed})")
        if self.pad_to_square is not None:
            parts.append(f"pad to square {'on' if self.pad_to_square else 'off'}")
        if self.max_new_tokens is not None:
            parts.append(f"answers up to {self.max_new_tokens} tokens")
        if self.reasoning is not None:
            parts.append("thinks before answering" if self.reasoning else "answers directly")
        if self.history is False:
            parts.append("answers each question on its own")
        return "; ".join(parts)


@dataclass(frozen=True)
class ModelCard:
    """What a checkpoint says about itself (see the module docstring for the file).

    Attributes:
        name: a name for people.
        description: a sentence or two for people.
        family: a registry key (`birdview.core.families`) that overrides the one config.json
            implies; None keeps config.json's.
        trained_on: what it was trained on.
        overrides: family defaults it changes.
        schema: the card format's version (`SCHEMA`).

    Raises:
        ValueError: a field is out of range or of the wrong type; the family is unknown.
    """

    name: str
    description: str = ""
    family: str | None = None
    trained_on: TrainedOn = field(default_factory=TrainedOn)
    overrides: Overrides = field(default_factory=Overrides)
    schema: int = SCHEMA

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _text(self.name, "name", _MAX_TEXT))
        if not self.name:
            raise _Invalid("name must not be empty")
        object.__setattr__(
            self, "description", _text(self.description, "description", _MAX_DESCRIPTION)
        )
        if self.family is not None and self.family not in families.keys():
            raise _Invalid(
                f"family {self.family!r} is not a model family BirdView knows "
                f"({', '.join(families.keys())})"
            )
        if self.schema != SCHEMA:
            raise _Invalid(f"schema {self.schema!r} is not one this BirdView reads ({SCHEMA})")

    def summary(self) -> str:
        """One line for people: what it was trained on and what it changes."""
        trained = self.trained_on.summary()
        line = f"Trained on {trained}" if trained else "The card does not say what it saw"
        changed = self.overrides.summary()
        return f"{line}. Changes: {changed}." if changed else f"{line}."

    def to_dict(self) -> dict[str, Any]:
        """The ``"card"`` object of birdview.json (unset overrides left out)."""
        data: dict[str, Any] = {"schema": self.schema, "name": self.name}
        if self.description:
            data["description"] = self.description
        if self.family is not None:
            data["family"] = self.family
        trained = self.trained_on
        data["trained_on"] = {
            "modalities": list(trained.modalities),
            "body_regions": list(trained.body_regions),
            "structures": list(trained.structures),
            "image_kinds": list(trained.image_kinds),
        }
        overrides = _overrides_dict(self.overrides)
        if overrides:
            data["overrides"] = overrides
        return data


def _overrides_dict(overrides: Overrides) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if overrides.prompts:
        data["prompts"] = dict(overrides.prompts)
    if overrides.box.changes():
        data["box"] = overrides.box.changes()
    if overrides.pad_to_square is not None:
        data["pad_to_square"] = overrides.pad_to_square
    generation = {
        key: value
        for key, value in (
            ("max_new_tokens", overrides.max_new_tokens),
            ("reasoning", overrides.reasoning),
            ("history", overrides.history),
        )
        if value is not None
    }
    if generation:
        data["generation"] = generation
    return data


# -- checks shared by the card's parts ------------------------------------------------------


def _text(value: object, where: str, limit: int) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"{where} must be a string, not {kind(value)}")
    value = value.strip()
    if len(value) > limit:
        raise _Invalid(f"{where} is {len(value)} characters long; the limit is {limit}")
    return value


def _names(values: object, where: str) -> tuple[str, ...]:
    """Non-empty strings, duplicates (ignoring case) dropped, order kept."""
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise _Invalid(f"{where} must be a list of strings, not {kind(values)}")
    if len(values) > _MAX_ITEMS:
        raise _Invalid(f"{where} holds {len(values)} names; the limit is {_MAX_ITEMS}")
    kept: dict[str, str] = {}
    for value in values:
        if not isinstance(value, str):
            raise _Invalid(f"{where} must be a list of strings, but holds {kind(value)}")
        name = _text(value, where, _MAX_TEXT)
        if not name:
            raise _Invalid(f"{where} holds an empty name")
        kept.setdefault(name.lower(), name)
    return tuple(kept.values())


def _one_of(value: object, allowed: tuple[str, ...], where: str) -> None:
    if value is not None and value not in allowed:
        raise _Invalid(f"{where} must be one of {', '.join(allowed)}, not {show(value)}")


def _optional_bool(value: object, where: str) -> None:
    if value is not None and not isinstance(value, bool):
        raise _Invalid(f"{where} must be true or false, not {kind(value)}")


def _task_code(task: str, where: str) -> str:
    """A task's Med-GRIT code from its code ("RO") or name ("ROC")."""
    try:
        return Task(task).code
    except ValueError:
        pass
    try:
        return Task[task].code
    except KeyError:
        known = ", ".join(t.code for t in Task)
        raise _Invalid(f"{where} names task {task!r}; the tasks are {known}") from None


def _prompts(prompts: object) -> tuple[tuple[str, str], ...]:
    if isinstance(prompts, Mapping):
        pairs = list(prompts.items())
    elif isinstance(prompts, list | tuple) and all(len(p) == 2 for p in prompts):
        pairs = list(prompts)
    else:
        raise _Invalid(f"overrides.prompts must be an object, not {kind(prompts)}")
    checked: dict[str, str] = {}
    for task, template in pairs:
        code = _task_code(str(task), "overrides.prompts")
        where = f"overrides.prompts.{task}"
        template = _text(template, where, _MAX_TEXT)
        needed = _PLACEHOLDERS[code]
        if needed and needed not in template:
            raise _Invalid(f"{where} must hold {needed} where it goes in the question")
        if not template:
            raise _Invalid(f"{where} must not be empty")
        checked[code] = template
    return tuple(sorted(checked.items()))


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
