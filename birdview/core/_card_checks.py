"""Checks shared by the model card's parts (`birdview.core.model_card`): each raises
`_Invalid`, whose reason starts with the field's path inside the card."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from birdview.core._card_json import kind, show
from birdview.core.prompts import Task

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
