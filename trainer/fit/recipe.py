"""A fit recipe: four plain dataclasses, read from YAML, changed by ``key=value`` overrides.

::

    recipe = load_recipe("bird-full", ["model.base=ckpt/base", "data.train=data/train.json",
                                       "out=runs/bird"])

``load_recipe`` takes a YAML path or the name of a recipe shipped in ``trainer/recipes/``.
Unknown keys and wrong types are refused with the key named. Overrides are ``section.key=value``
(``out=...`` and ``name=...`` at the top); the value is read as YAML (``true``, ``4``,
``[a, b]``). Floats may be written ``2e-5`` (PyYAML reads that as a string; it is accepted
for float fields). Relative paths are kept as written and resolved against the working folder
when the run starts, except eval files, which may also sit next to the training JSON.

Why not pydantic or OmegaConf (both tried on these tests): OmegaConf's structured configs would
take over the overrides, but coerce ``data.pack=3`` to true where this refuses it. A pydantic
version passed every recipe test in 88 fewer lines, at the price of a new ``[train]`` dependency,
0.1 s instead of 0.03 s to import it and load a recipe, YAML quirks (``2e-5`` read as a string,
lists for tuples) moved into validators, and a table that turns pydantic's error codes back into
messages naming the key (STYLE's wording); the sections would stop being the plain dataclasses
STYLE asks for. What it removes (`_build`, `_coerce`, `_check_choice`, `Recipe.__post_init__`)
is plain code one reads top to bottom, so the dataclasses stay.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "RECIPES_DIR",
    "DataConfig",
    "EvalConfig",
    "ModelConfig",
    "Recipe",
    "TrainConfig",
    "load_recipe",
    "recipe_names",
    "recipe_to_dict",
    "recipe_to_yaml",
]

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"
METHODS = ("full", "lora", "qlora")
PRECISIONS = ("bf16", "fp32")
SCHEDULES = ("cosine", "linear", "constant_with_warmup")
PACK_INTO = ("batch", "sequences")
# The language model's projections (attention, MLP) and those of linear-attention layers.
LORA_TARGETS = (
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
    "in_proj_qkv", "in_proj_z", "out_proj",
)  # fmt: skip


@dataclass(frozen=True)
class ModelConfig:
    """The base and what of it trains.

    ``method``: ``full`` trains the parts switched on below; ``lora`` freezes the base and
    trains adapters on the language model's projections (plus the merger when
    ``train_merger``); ``qlora`` does the same on an nf4-quantised base. ``freeze``: parameters
    whose names contain one of these stay frozen whatever the switches say (e.g.
    ``visual.patch_embed``).
    """

    base: str = ""
    method: str = "full"
    precision: str = "bf16"
    train_vision: bool = False
    train_merger: bool = True
    train_language: bool = True
    gradient_checkpointing: bool = True
    attention: str = "sdpa"
    lora_r: int = 64
    lora_alpha: int = 128
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = LORA_TARGETS
    freeze: tuple[str, ...] = ()


@dataclass(frozen=True)
class DataConfig:
    """Med-GRIT training data and how it becomes tokens.

    ``images``: the folder the ``<img>`` paths are relative to ("" = the JSON's folder).
    ``min_pixels``/``max_pixels``: the image token budget (0 keeps the base processor's); the
    trained processor is saved with the checkpoint, so the app asks with the same budget.
    ``max_length``: longer conversations lose their last turns (whole turns); an item whose
    first turn alone is longer is skipped. ``pack``: several conversations share a sequence,
    each attending only to itself. ``pack_into``: ``batch`` packs the conversations of each
    batch (the batch sizes count conversations); ``sequences`` packs them, in data order,
    into sequences of at most ``max_length`` tokens before batching, as BiRD did (the batch
    sizes count sequences; `trainer.fit.packing`). ``max_items``: 0 = all.
    """

    train: str = ""
    images: str = ""
    min_pixels: int = 0
    max_pixels: int = 0
    max_length: int = 2048
    pack: bool = False
    pack_into: str = "batch"
    max_items: int = 0


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation. ``batch_size`` is the effective batch (examples per optimiser step:
    conversations, or packed sequences with ``data.pack_into: sequences``): per-device batch
    × accumulation × processes; accumulation is derived from it.
    ``max_steps`` > 0 overrides ``epochs``. ``deepspeed``: a DeepSpeed JSON such as
    ``trainer/launch/zero2.json`` (FSDP comes from ``accelerate launch --config_file
    trainer/launch/fsdp.yaml``)."""

    epochs: float = 2.0
    max_steps: int = -1
    lr: float = 2e-5
    schedule: str = "cosine"
    warmup: float = 0.01
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    max_grad_norm: float = 1.0
    batch_size: int = 32
    per_device_batch: int = 4
    seed: int = 0
    log_every: int = 10
    save_every: int = 500
    keep_checkpoints: int = 2
    workers: int = 0
    deepspeed: str = ""


@dataclass(frozen=True)
class EvalConfig:
    """Held-out evaluation at the end of every epoch: predict with the model being trained on
    Med-GRIT test files and score them as BiRD does (VG and ROC files; others are skipped).
    A relative file that is not found from the working folder is looked up next to the
    training JSON. ``max_items`` per file (0 = all)."""

    files: tuple[str, ...] = ("test_vg.json", "test_roc.json")
    images: str = ""
    max_items: int = 200
    batch_size: int = 8


@dataclass(frozen=True)
class Recipe:
    """A whole run. ``out``: the folder the checkpoint, logs and resumable state go to."""

    name: str = ""
    out: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        _check_choice("model.method", self.model.method, METHODS)
        _check_choice("model.precision", self.model.precision, PRECISIONS)
        _check_choice("train.schedule", self.train.schedule, SCHEDULES)
        _check_choice("data.pack_into", self.data.pack_into, PACK_INTO)
        positive = {
            "data.max_length": self.data.max_length,
            "train.batch_size": self.train.batch_size,
            "train.per_device_batch": self.train.per_device_batch,
            "train.log_every": self.train.log_every,
            "train.save_every": self.train.save_every,
            "eval.batch_size": self.eval.batch_size,
        }
        for key, value in positive.items():
            if value < 1:
                raise ValueError(f"Unable to use the recipe as {key} is {value!r}, not >= 1")
        if not 0.0 <= self.train.warmup < 1.0:
            raise ValueError(
                f"Unable to use the recipe as train.warmup {self.train.warmup!r} is not a "
                "fraction of the steps in [0, 1)"
            )


_SECTIONS = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig, "eval": EvalConfig}


def recipe_names() -> list[str]:
    """The recipes shipped in ``trainer/recipes/``."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def load_recipe(config: str | Path, overrides: typing.Sequence[str] = ()) -> Recipe:
    """The recipe in the YAML file ``config`` (or the shipped recipe of that name) with
    ``overrides`` (``"section.key=value"``) applied.

    Raises:
        FileNotFoundError: no such file and no shipped recipe of that name.
        ValueError: the file is not UTF-8 YAML, the YAML is not a mapping, a key is unknown, a
            value has the wrong type, or an override is not ``key=value``.
    """
    path = _recipe_path(config)
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise ValueError(f"Unable to read the recipe '{path}' as it is not a YAML mapping")
    data.setdefault("name", path.stem)
    for override in overrides:
        _apply_override(data, override)
    return recipe_from_dict(data)


def recipe_from_dict(data: dict[str, Any]) -> Recipe:
    """A `Recipe` from nested plain values (what the YAML holds).

    Raises:
        ValueError: an unknown key or a value of the wrong type.
    """
    unknown = sorted(set(data) - {"name", "out", *_SECTIONS})
    if unknown:
        raise ValueError(
            f"Unable to read the recipe as {unknown[0]!r} is not a key; the keys are name, "
            f"out, {', '.join(_SECTIONS)}"
        )
    sections = {}
    for name, cls in _SECTIONS.items():
        values = data.get(name) or {}
        if not isinstance(values, dict):
            raise ValueError(f"Unable to read the recipe as {name!r} is not a mapping")
        sections[name] = _build(name, cls, values)
    top = {k: _coerce(k, data.get(k, ""), str) for k in ("name", "out")}
    return Recipe(**top, **sections)


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """Nested plain values (tuples as lists), the inverse of `recipe_from_dict`."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return list(value)
        return value

    data: dict[str, Any] = {"name": recipe.name, "out": recipe.out}
    for name in _SECTIONS:
        section = getattr(recipe, name)
        data[name] = {f.name: plain(getattr(section, f.name)) for f in dataclasses.fields(section)}
    return data


def recipe_to_yaml(recipe: Recipe) -> str:
    import yaml

    return yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False)


# -- helpers --------------------------------------------------------------------------------


def _recipe_path(config: str | Path) -> Path:
    path = Path(config)
    if path.is_file():
        return path
    shipped = RECIPES_DIR / f"{config}.yaml"
    if "/" not in str(config) and shipped.is_file():
        return shipped
    raise FileNotFoundError(
        f"Unable to read the recipe {str(config)!r} as it is neither a file nor one of the "
        f"shipped recipes ({', '.join(recipe_names())})"
    )


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ValueError(f"Unable to read the recipe '{path}' as it is not UTF-8 text") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"Unable to read the recipe '{path}' as {_yaml_problem(exc)}") from exc
    except RecursionError as exc:
        raise ValueError(f"Unable to read the recipe '{path}' as it nests too deeply") from exc


def _yaml_problem(exc: Exception) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}" if mark is not None else ""
    return f"it is not YAML ({getattr(exc, 'problem', None) or 'unreadable'}{where})"


def _apply_override(data: dict[str, Any], override: str) -> None:
    import yaml

    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"Unable to apply the override {override!r} as it is not key=value")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except (yaml.YAMLError, RecursionError):
        value = text  # refused below as a string of the wrong type, if it is not one
    parts = key.split(".")
    if len(parts) == 1:
        data[key] = value
        return
    if len(parts) != 2 or parts[0] not in _SECTIONS:
        raise ValueError(
            f"Unable to apply the override {override!r} as {key!r} is not name, out or "
            f"section.key with a section among {', '.join(_SECTIONS)}"
        )
    section = data.setdefault(parts[0], {})
    if not isinstance(section, dict):
        raise ValueError(
            f"Unable to apply the override {override!r} as {parts[0]!r} is not a mapping"
        )
    section[parts[1]] = value


def _build(section: str, cls: type, values: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(
            f"Unable to read the recipe as {section}.{unknown[0]} is not a key; "
            f"{section} has {', '.join(names)}"
        )
    return cls(**{k: _coerce(f"{section}.{k}", v, hints[k]) for k, v in values.items()})


def _coerce(key: str, value: Any, kind: Any) -> Any:
    """``value`` as ``kind`` (str, bool, int, float, tuple[str, ...]), or ValueError."""
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is float and not isinstance(value, bool):
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    if kind is str and isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    if kind is str and value is None:
        return ""
    if typing.get_origin(kind) is tuple:
        items = [value] if isinstance(value, str) else value
        if isinstance(items, list | tuple) and all(isinstance(v, str) for v in items):
            return tuple(items)
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    wanted = words.get(kind, "a list of strings")
    raise ValueError(f"Unable to read the recipe as {key} is {value!r}, not {wanted}")


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"Unable to use the recipe as {key} {value!r} is not one of {choices}")
