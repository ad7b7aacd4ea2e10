"""What ``fit`` checks before it imports torch or writes anything, and its output folder.

``birdview-train fit`` calls `check_start` before it imports the training stack, so a run
that cannot start is refused in a moment and leaves nothing behind: the output folder, the
training file and every item in it, the images folder, the base, the batch arithmetic and a
DeepSpeed config are all checked here.

The output folder is in one of three states:

* new or empty: a run starts in it;
* started but never checkpointed: it holds ``recipe.yaml`` and at most ``logs/``, ``eval/``
  and a ``checkpoints/`` without a complete checkpoint. Nothing in it can be resumed, so a
  rerun starts afresh there, with or without ``--resume`` and whatever its recipe; a start
  that failed after the checks (a base that does not load, memory) never blocks the rerun;
* a run with a checkpoint or a finished model: only ``--resume`` with the same recipe
  continues it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from birdview.core import families
from birdview.core.model_card import read_card
from trainer._json_stream import read_json
from trainer.fit.checkpoint import RECIPE_FILE, latest_checkpoint
from trainer.fit.recipe import Recipe, load_recipe, recipe_to_dict, recipe_to_yaml
from trainer.fit.samples import Sample, read_samples

__all__ = [
    "Start",
    "accumulation",
    "check_start",
    "data_paths",
    "is_main",
    "open_out",
    "world_size",
]

logger = logging.getLogger(__name__)

# What a start leaves before its first checkpoint (`open_out`, the logs, held-out answers).
_LEFT_BY_A_START = frozenset({RECIPE_FILE, "logs", "eval", "checkpoints"})


@dataclass(frozen=True)
class Start:
    """A run that passed `check_start`: where it writes and what it trains on."""

    out: Path
    train_json: Path
    images: Path
    samples: list[Sample]


def check_start(recipe: Recipe, *, resume: bool = False) -> Start:
    """Everything about ``recipe`` that can be checked without torch, in the order a user
    fixes them; nothing is written.

    Raises:
        FileNotFoundError: the training file, its images folder or the base is missing.
        ValueError: the output folder cannot take this run (see the module docstring), the
            base is of no known family or its family rules out what the recipe asks
            (packing, a pixel budget), the training file is not Med-GRIT JSON or has no usable
            item, the batch sizes do not divide, or the DeepSpeed config is not a JSON object.
    """
    out = _check_out(recipe, resume)
    train_json, images = data_paths(recipe)
    _check_base(recipe.model.base)
    accumulation(recipe)
    _check_deepspeed(recipe.train.deepspeed)
    samples = read_samples(train_json, images, max_items=recipe.data.max_items)
    _check_family(recipe)
    return Start(out, train_json, images, samples)


def open_out(recipe: Recipe, out: Path) -> None:
    """Create the output folder and write the resolved recipe to it (main process only)."""
    if is_main():
        (out / "logs").mkdir(parents=True, exist_ok=True)
        (out / RECIPE_FILE).write_text(recipe_to_yaml(recipe), encoding="utf-8")


def data_paths(recipe: Recipe) -> tuple[Path, Path]:
    """The training file and its images folder.

    Raises:
        FileNotFoundError: either is missing, or is a folder where a file is expected.
    """
    train = Path(recipe.data.train)
    if not recipe.data.train or not train.is_file():
        cause = (
            "is a folder, not a file" if train.is_dir() and recipe.data.train else "is not a file"
        )
        raise FileNotFoundError(
            f"Unable to train as data.train {recipe.data.train!r} {cause}; pass "
            "--override data.train=TRAIN.json (birdview-train build-data writes one)"
        )
    images = Path(recipe.data.images) if recipe.data.images else train.parent
    if not images.is_dir():
        raise FileNotFoundError(f"Unable to train as the images folder '{images}' does not exist")
    return train, images


def accumulation(recipe: Recipe) -> int:
    """Gradient accumulation steps that make ``train.batch_size`` on this many processes.

    Raises:
        ValueError: the batch size is not a multiple of the per-device batch × processes.
    """
    per_step = recipe.train.per_device_batch * world_size()
    if recipe.train.batch_size % per_step:
        raise ValueError(
            f"Unable to make batches of train.batch_size {recipe.train.batch_size} from "
            f"train.per_device_batch {recipe.train.per_device_batch} on {world_size()} "
            "processes; choose a batch size divisible by their product"
        )
    return recipe.train.batch_size // per_step


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


# -- the output folder ----------------------------------------------------------------------


def _check_out(recipe: Recipe, resume: bool) -> Path:
    if not recipe.out:
        raise ValueError(
            "Unable to start a run as no output folder is set; pass --override out=DIR"
        )
    out = Path(recipe.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"Unable to start a run in '{out}' as it is a file, not a folder")
    if _never_checkpointed(out):
        logger.info("the run in %s saved no checkpoint: it starts afresh", out)
        return out
    if resume:
        _check_same_recipe(recipe, out)
    elif is_main() and out.is_dir() and any(out.iterdir()):
        # Only the main process: the others may look after it has created the folder.
        raise ValueError(
            f"Unable to start a run in '{out}' as the folder is not empty; pass --resume to "
            "continue the run in it, or choose another out"
        )
    return out


def _never_checkpointed(out: Path) -> bool:
    """Whether ``out`` holds only what a start leaves before its first checkpoint."""
    if not (out / RECIPE_FILE).is_file():
        return False
    names = {entry.name for entry in out.iterdir()}
    return names <= _LEFT_BY_A_START and latest_checkpoint(out) is None


def _check_same_recipe(recipe: Recipe, out: Path) -> None:
    saved = out / RECIPE_FILE
    if not saved.is_file():
        raise ValueError(
            f"Unable to resume the run in '{out}' as it holds no {RECIPE_FILE}; start it "
            "without --resume"
        )
    difference = _first_difference(recipe_to_dict(load_recipe(saved)), recipe_to_dict(recipe))
    if difference:
        raise ValueError(
            f"Unable to resume the run in '{out}' as its recipe differs at {difference}; "
            "resume with the same recipe and overrides"
        )


def _first_difference(old: dict, new: dict, prefix: str = "") -> str:
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found = _first_difference(a, b, f"{prefix}{key}.")
            if found:
                return found
        elif a != b:
            return f"{prefix}{key} ({a!r} then, {b!r} now)"
    return ""


# -- the base and the launcher --------------------------------------------------------------


def _check_base(base: str) -> None:
    if not base or not os.path.isdir(base):
        raise FileNotFoundError(
            f"Unable to load the base model as model.base {base!r} is not a folder; pass "
            "--override model.base=DIR"
        )
    if not os.path.isfile(os.path.join(base, "config.json")):
        raise FileNotFoundError(
            f"Unable to load the base model as '{base}' has no config.json; choose a "
            "checkpoint folder (birdview-train tiny writes a small one)"
        )


def _check_family(recipe: Recipe) -> None:
    """What the base's family (from its config.json) rules out: an unknown model type,
    packing where the family refuses it, a pixel budget where its processor resizes to one
    fixed size; and a model card that cannot be read (the conventions it sets are trained
    in)."""
    family = families.for_config(read_json(os.path.join(recipe.model.base, "config.json")))
    read_card(recipe.model.base)  # its conventions are trained in: a damaged card stops here
    if recipe.data.pack and family.packing.refusal:
        raise ValueError(f"Unable to pack conversations as {family.packing.refusal}")
    if (recipe.data.min_pixels or recipe.data.max_pixels) and family.image.resize != "smart":
        raise ValueError(
            f"Unable to set the image budget as {family.title} resizes every image to one "
            "fixed size; leave data.min_pixels and data.max_pixels at 0"
        )


def _check_deepspeed(config: str) -> None:
    if config and not isinstance(read_json(config), dict):
        raise ValueError(
            f"Unable to use the DeepSpeed config '{config}' as it is not a JSON object"
        )
