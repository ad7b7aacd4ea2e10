"""The model card's parts as dataclasses: what a checkpoint was trained on, the family
defaults it changes, and the card that holds them (`birdview.core.model_card` reads and writes
them)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from birdview.core import _card_words as words
from birdview.core import families
from birdview.core._card_checks import (
    _JSON_KEY,
    _MAX_DESCRIPTION,
    _MAX_NEW_TOKENS,
    _MAX_TEXT,
    _ORDERS,
    _STYLES,
    _Invalid,
    _names,
    _one_of,
    _optional_bool,
    _prompts,
    _task_code,
    _text,
)
from birdview.core.box_codecs import BoxCodec
from birdview.core.prompts import Task

SCHEMA = 1


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
    """What a checkpoint says about itself (`birdview.core.model_card` describes the file).

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
