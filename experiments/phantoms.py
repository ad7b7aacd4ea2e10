"""Phantom slices with Med-GRIT conversations, for teaching a tiny model to ground on a CPU.

Each slice (224 × 224, greyscale as RGB) shows a soft textured "body" ellipse with noise and
1–3 non-overlapping named objects of 20–68 px: a bright ``circle``, ``square``, ``triangle``,
``ring`` or ``cross``, or a dark ``cyst`` that only its intensity tells apart from the circle
(docs/LEARNING_PROOF.md trains on them). Brightness, size, position and texture vary. Items
are Med-GRIT JSON with the questions BiRD's test files use, 75 % grounding and 25 % referring::

    python -m experiments.phantoms --out runs/phantoms --train 4000 --test 200
    birdview-train tiny --family FAMILY --out runs/tiny
    birdview-train fit --config tiny-cpu --override model.base=runs/tiny \\
        data.train=runs/phantoms/train.json out=runs/phantom-fit train.epochs=4

writes ``images/``, ``train.json`` (one item per slice, one turn per object), and
``test_vg.json`` / ``test_roc.json`` (first object of each unseen slice), which ``tiny-cpu``
scores at the end of every epoch. The same seed gives the same files.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainer.medgrit import write_items

__all__ = ["SHAPES", "Phantom", "make_phantom", "write_phantoms"]

logger = logging.getLogger(__name__)

SIZE_PX = 224
SHAPES = ("circle", "square", "triangle", "ring", "cross", "cyst")
GRID = 1000
GROUNDING_SHARE = 0.75
# ``distinct_levels``: each bright name gets its own intensity band (centre ± 8), so that
# intensity alone tells the names apart (a learning-proof lever, docs LEARNING_PROOF.md).
DISTINCT_LEVELS = {"cross": 125, "circle": 155, "square": 185, "triangle": 215, "ring": 245}


@dataclass(frozen=True)
class Phantom:
    """A rendered slice (rows, cols, 3) uint8 and its objects: (name, (x1, y1, x2, y2) pixel
    edges)."""

    image: np.ndarray
    objects: tuple[tuple[str, tuple[int, int, int, int]], ...]


def make_phantom(
    rng: random.Random,
    size_px: int = SIZE_PX,
    *,
    distinct_levels: bool = False,
    max_objects: int = 3,
) -> Phantom:
    """One phantom slice drawn from ``rng`` with 1 to ``max_objects`` objects; with
    ``distinct_levels`` each bright name has its own intensity band (`DISTINCT_LEVELS`) instead
    of one shared band."""
    noise = np.random.default_rng(rng.getrandbits(32))
    image = _body(noise, rng, size_px)
    taken: list[tuple[int, int, int, int]] = []
    objects = []
    for _ in range(rng.randint(1, max_objects)):
        name = rng.choice(SHAPES)
        placed = _place(rng, size_px, taken)
        if placed is None:
            break
        mask = _shape_mask(name, placed, size_px)
        rows, cols = np.nonzero(mask)
        if not len(rows):
            continue
        if name == "cyst":
            level = rng.uniform(15, 55)
        elif distinct_levels:
            level = DISTINCT_LEVELS[name] + rng.uniform(-8, 8)
        else:
            level = rng.uniform(165, 245)
        texture = noise.normal(0.0, rng.uniform(3, 10), mask.shape)
        image = np.where(mask, level + texture, image)
        taken.append(placed)
        box = (int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1)
        objects.append((name, box))
    image = image + noise.normal(0.0, rng.uniform(2, 8), image.shape)
    grey = np.clip(image, 0, 255).astype(np.uint8)
    return Phantom(np.repeat(grey[:, :, None], 3, axis=2), tuple(objects))


def write_phantoms(
    out: str | Path,
    *,
    train: int = 4000,
    test: int = 200,
    seed: int = 0,
    size_px: int = SIZE_PX,
    distinct_levels: bool = False,
    grid_step: int = 1,
    max_objects: int = 3,
    grounding_share: float = GROUNDING_SHARE,
    question_step: int = 1,
) -> Path:
    """Write ``train`` + ``test`` phantoms and their Med-GRIT files to ``out``; returns the
    path of ``train.json``. ``distinct_levels``: see `make_phantom`. ``grid_step``: training
    boxes rounded to multiples of it on the 0–1000 grid (test boxes stay exact).
    ``max_objects``: at most this many objects per slice (1 for a curriculum's first stage).
    ``grounding_share``: the share of training turns that ground (the rest name a box).
    ``question_step``: the grid step of the boxes in the test naming questions (the model's
    input; a model whose vocabulary has one token per multiple of 10 is asked on that grid)."""
    from PIL import Image

    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    items: dict[str, list] = {"train": [], "vg": [], "roc": []}
    for n in range(train + test):
        phantom = make_phantom(
            rng, size_px, distinct_levels=distinct_levels, max_objects=max_objects
        )
        if not phantom.objects:
            continue
        name = f"ct_00--phantom--case{n:05d}--z_0000.png"
        Image.fromarray(phantom.image).save(out / "images" / name, optimize=False)
        turns = [
            _turn(rng, label, box, size_px, step=grid_step, share=grounding_share)
            for label, box in phantom.objects
        ]
        item_id = name[: -len(".png")]
        picture = f"Picture 1: <img>images/{name}</img>\n"
        if n < train:
            first = [picture + turns[0][0], turns[0][1]]
            items["train"].append({"id": item_id, "conversations": [first, *map(list, turns[1:])]})
            continue
        label, box = phantom.objects[0]
        for task, step in (("vg", 1), ("roc", question_step)):
            question, answer = _turn(rng, label, box, size_px, task=task, step=step)
            items[task].append({"id": item_id, "conversations": [[picture + question, answer]]})
    write_items(out / "train.json", items["train"])
    write_items(out / "test_vg.json", items["vg"])
    write_items(out / "test_roc.json", items["roc"])
    card = {
        "generator": "experiments.phantoms",
        "seed": seed,
        "size_px": size_px,
        "train": len(items["train"]),
        "test": len(items["vg"]),
        "shapes": list(SHAPES),
        "distinct_levels": distinct_levels,
        "grid_step": grid_step,
        "max_objects": max_objects,
        "grounding_share": grounding_share,
        "question_step": question_step,
    }
    (out / "data_card.json").write_text(json.dumps(card, indent=2), encoding="utf-8")
    logger.info(
        "wrote %d training and %d test phantoms to %s", len(items["train"]), len(items["vg"]), out
    )
    return out / "train.json"


# -- drawing --------------------------------------------------------------------------------


def _body(noise: np.random.Generator, rng: random.Random, size: int) -> np.ndarray:
    """A soft ellipse with low-frequency texture on a dark background."""
    from PIL import Image

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cx, cy = size / 2 + rng.uniform(-8, 8), size / 2 + rng.uniform(-8, 8)
    ax, ay = size * rng.uniform(0.40, 0.48), size * rng.uniform(0.34, 0.46)
    inside = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2
    edge = np.clip((1.08 - inside) / 0.16, 0.0, 1.0)
    coarse = noise.normal(0.0, 1.0, (8, 8)).astype(np.float32)
    texture = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BILINEAR))
    level = rng.uniform(70, 115)
    return edge * (level + texture * rng.uniform(6, 16))


def _place(rng: random.Random, size: int, taken: list) -> tuple[int, int, int, int] | None:
    """A square (x1, y1, x2, y2) of 20–68 px well inside the body, apart from ``taken``."""
    for _ in range(50):
        side = rng.randint(20, 68)
        margin = int(size * 0.16)
        x1 = rng.randint(margin, size - margin - side)
        y1 = rng.randint(margin, size - margin - side)
        box = (x1, y1, x1 + side, y1 + side)
        if all(_apart(box, other) for other in taken):
            return box
    return None


def _apart(a: tuple[int, int, int, int], b: tuple[int, int, int, int], gap: int = 4) -> bool:
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def _shape_mask(name: str, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    x1, y1, x2, y2 = box
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    side = x2 - x1
    if name in ("circle", "cyst"):
        draw.ellipse([x1, y1, x2 - 1, y2 - 1], fill=1)
    elif name == "square":
        draw.rectangle([x1, y1, x2 - 1, y2 - 1], fill=1)
    elif name == "triangle":
        draw.polygon([(x1 + side / 2, y1), (x2 - 1, y2 - 1), (x1, y2 - 1)], fill=1)
    elif name == "ring":
        draw.ellipse([x1, y1, x2 - 1, y2 - 1], fill=1)
        hole = max(3, side // 4)
        draw.ellipse([x1 + hole, y1 + hole, x2 - 1 - hole, y2 - 1 - hole], fill=0)
    elif name == "cross":
        arm = max(2, side // 6)
        mid_x, mid_y = (x1 + x2) / 2, (y1 + y2) / 2
        draw.rectangle([mid_x - arm, y1, mid_x + arm, y2 - 1], fill=1)
        draw.rectangle([x1, mid_y - arm, x2 - 1, mid_y + arm], fill=1)
    return np.asarray(canvas, dtype=bool)


# -- conversations --------------------------------------------------------------------------


def _turn(
    rng: random.Random,
    label: str,
    box: tuple[int, int, int, int],
    size: int,
    task: str | None = None,
    step: int = 1,
    share: float = GROUNDING_SHARE,
) -> tuple[str, str]:
    """A grounding (VG) or referring (ROC) question and answer, in BiRD's test wording."""
    x1, y1, x2, y2 = (_grid(v, size, step) for v in box)
    tag = f"<box>({x1},{y1}),({x2},{y2})</box>"
    task = task or ("vg" if rng.random() < share else "roc")
    if task == "vg":
        return (
            f"Where is the {label} located in the image?",
            f"The {label} is located at <ref>{label}</ref>{tag}.",
        )
    return f"What anatomical structure is present at the {tag}?", label.capitalize()


def _grid(value: int, size: int, step: int = 1) -> int:
    return min(GRID, max(0, step * math.floor(value / size * GRID / step + 0.5)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the folder to write")
    parser.add_argument("--train", type=int, default=4000, help="training phantoms")
    parser.add_argument("--test", type=int, default=200, help="unseen test phantoms")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--distinct-levels", action="store_true", help="one intensity band per bright name"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    write_phantoms(
        args.out,
        train=args.train,
        test=args.test,
        seed=args.seed,
        distinct_levels=args.distinct_levels,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
