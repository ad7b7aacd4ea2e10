"""Model families: one module per family, declaring everything that differs between them.

A family (`Family`) says how its checkpoints are recognised (``config.model_type``), how it
writes boxes both ways (`BoxCodec`), its chat markup and end-of-turn tokens, how images are
prepared (pad to square, the processor's resize rule), which modules stay unquantised under
nf4/int8 (full module paths), whether training may pack conversations, its decoding defaults
and the tiny model `birdview-train tiny` builds. The app, ``birdview ask``, the worker and the
trainer ask this registry (`get`, `for_model_type`, `for_config`) and never name a family.

This package is data only: no torch, no transformers (``core``'s rule), so the app's core and
the trainer share it. Where the model stack must be called, a family names the transformers
class or function as a string and the caller looks it up.

Adding a family
---------------
1. Write ``birdview/core/families/<key>.py`` with a module-level ``FAMILY = Family(...)``:
   its ``model_types``, a `BoxCodec` (style, JSON key and order, grid or model pixels, pad to
   square), `ChatMarkup` (the assistant header and end-of-turn token of its chat template,
   stop tokens, thought markers), `ImageRule`, the ``unquantised`` module paths (check them
   by counting ``Linear4bit`` modules under the vision tower after an nf4 load: 0), the
   parameter-name parts of its vision tower and projector, `Packing`, `Generation`, and a
   `TinyRecipe` (tokens, chat template, config and processor) if tests should build one.
2. Add the module's name to ``_MODULES`` below.
3. Add its tests: the codec round trip and real replies (``tests/core/test_families.py``),
   a tiny model through ``ask --json`` at fp32 and nf4 (``tests/inference``).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import Any

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

__all__ = [
    "ChatMarkup",
    "Family",
    "Generation",
    "ImageRule",
    "Packing",
    "ProcessorRecipe",
    "TinyRecipe",
    "TinySpec",
    "all_families",
    "demo_family",
    "for_config",
    "for_model_type",
    "get",
    "keys",
    "tiny_families",
]

_MODULES = ("medgrit", "qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_5", "gemma3")


def _load() -> dict[str, Family]:
    families: dict[str, Family] = {}
    for name in _MODULES:
        family = importlib.import_module(f"{__name__}.{name}").FAMILY
        families[family.key] = family
    return families


_FAMILIES = _load()
_BY_MODEL_TYPE = {t: f for f in _FAMILIES.values() for t in f.model_types}


def all_families() -> tuple[Family, ...]:
    """Every registered family, in registration order."""
    return tuple(_FAMILIES.values())


def keys() -> tuple[str, ...]:
    """Every registered family's key."""
    return tuple(_FAMILIES)


def demo_family() -> Family:
    """The family of the bundled demo model, and of the tiny models tests and benchmarks
    build when none is named (small, fast, and its JSON boxes on the 0–1000 grid)."""
    return _FAMILIES["qwen3_vl"]


def tiny_families() -> tuple[str, ...]:
    """Keys of the families `birdview-train tiny` can build."""
    return tuple(key for key, family in _FAMILIES.items() if family.tiny is not None)


def get(key: str) -> Family:
    """The family registered as ``key`` ("qwen2_5_vl", "gemma3"...).

    Raises:
        ValueError: no family has that key; the message lists those that do.
    """
    family = _FAMILIES.get(str(key))
    if family is None:
        raise ValueError(
            f"Unable to use model family {key!r} as it is not one of {sorted(_FAMILIES)}"
        )
    return family


def for_model_type(model_type: str) -> Family:
    """The family of a transformers ``config.model_type`` ("qwen2_5_vl", "gemma3"...).

    Raises:
        ValueError: no registered family has that model type.
    """
    key = str(model_type).strip().lower().replace("-", "_").replace(".", "_")
    family = _BY_MODEL_TYPE.get(key)
    if family is None:
        known = ", ".join(sorted(_BY_MODEL_TYPE))
        raise ValueError(
            f"Unable to choose a model family as model_type {model_type!r} is not one "
            f"BirdView knows; known model types: {known}"
        )
    return family


def for_config(config: Mapping[str, Any] | str) -> Family:
    """The family of a checkpoint's config.json (a mapping, or its text).

    Raises:
        ValueError: the config is not a JSON object or names no known model type.
    """
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except ValueError as exc:
            raise ValueError(
                f"Unable to choose a model family as config.json is not JSON ({exc})"
            ) from exc
    if not isinstance(config, Mapping):
        raise ValueError("Unable to choose a model family as config.json is not a JSON object")
    return for_model_type(str(config.get("model_type", "")))
