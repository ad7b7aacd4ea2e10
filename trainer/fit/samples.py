"""Med-GRIT items → training samples (their image found, their turns as text).

Kept free of torch and numpy, so that ``birdview-train fit`` reads and checks its training
file before it imports the training stack: a broken file is refused in a moment.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.medgrit import ImageFolder, image_of, question_text, read_items

__all__ = ["Sample", "read_samples"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    """One Med-GRIT item: its id, its image file and its (question, answer) turns in
    Med-GRIT text, the first question without its ``Picture 1: <img>..</img>`` part."""

    item_id: str
    image: Path
    turns: tuple[tuple[str, str], ...]


def read_samples(
    path: str | os.PathLike, images_dir: str | os.PathLike, *, max_items: int = 0
) -> list[Sample]:
    """The items of a Med-GRIT file whose image is found in ``images_dir``, in file order
    (the first ``max_items`` when above 0). Items without their image or with malformed turns
    are skipped with a warning that counts them (``birdview-train validate`` lists them).

    Raises:
        FileNotFoundError: there is no such file, or it is a folder.
        ValueError: the file is not a JSON list, or no item is usable.
    """
    folder = ImageFolder(images_dir)
    samples: list[Sample] = []
    skipped = 0
    for item in read_items(path):
        sample = _sample(item, folder)
        if sample is None:
            skipped += 1
            continue
        samples.append(sample)
        if max_items and len(samples) == max_items:
            break
    if skipped:
        logger.warning("skipped %d items of %s (image missing or malformed turns)", skipped, path)
    if not samples:
        raise ValueError(
            f"Unable to train on '{path}' as none of its items is usable with images from "
            f"'{images_dir}'; run 'birdview-train validate' on it"
        )
    return samples


def _sample(item: Any, folder: ImageFolder) -> Sample | None:
    try:
        image = folder.find(image_of(item))
        conversations = item["conversations"]
        turns = tuple((str(q), str(a)) for q, a in conversations)
    except (ValueError, KeyError, TypeError):
        return None
    if image is None or not turns:
        return None
    turns = ((question_text(turns[0][0]), turns[0][1]), *turns[1:])
    return Sample(str(item.get("id", "")), image, turns)
