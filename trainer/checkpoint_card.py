"""The model card a fit or a merge leaves in its checkpoint (`birdview.core.model_card`).

The card is made from the data card the trainer already recorded in the checkpoint's
``birdview.json`` (``data.card``: the ``data_card.json`` found beside the training file), added
to the base checkpoint's own card when it has one: a fine-tune has seen what its base saw. No
torch here: it runs after the weights are saved, and a card that cannot be made is logged,
never a failed run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from birdview.core.modalities import MODALITY_WORDS
from birdview.core.model_card import ModelCard, TrainedOn, read_card, write_card
from trainer.fit.checkpoint import read_metadata

__all__ = ["card_from_data_card", "write_checkpoint_card"]

logger = logging.getLogger(__name__)


def write_checkpoint_card(out: str | os.PathLike) -> ModelCard | None:
    """Put a model card into ``out/birdview.json`` (written by the fit or merge just before)
    and return it; a card already there (a merge keeps its adapter's) is kept. Without a data
    card the base's card is carried over (its conventions were trained in). None when there is
    neither, or the card could not be made or written (logged)."""
    out = Path(out)
    metadata = read_metadata(out)
    try:
        if "card" in metadata:
            return read_card(out)
        data = metadata.get("data")
        data_card = data.get("card") if isinstance(data, dict) else None
        base_card = _base_card(metadata.get("base"))
        if isinstance(data_card, dict):
            card = card_from_data_card(data_card, name=out.name, base_card=base_card)
        elif base_card is not None:  # the conventions it was trained in still hold
            card = replace(base_card, name=out.name)
        else:
            logger.info("no data card beside the training file: %s gets no model card", out)
            return None
        write_card(out, card)
    except (OSError, ValueError) as exc:
        logger.warning("could not write the model card of %s: %s", out, exc)
        return None
    logger.info("model card: %s", card.summary())
    return card


def _base_card(base: object) -> ModelCard | None:
    """The base checkpoint's card, if it has a readable one."""
    if not isinstance(base, str) or not base:
        return None
    try:
        return read_card(base)
    except ValueError as exc:
        logger.warning("the base checkpoint's card is left out: %s", exc)
        return None


def card_from_data_card(
    data_card: Mapping[str, Any], *, name: str, base_card: ModelCard | None = None
) -> ModelCard:
    """The card of a checkpoint trained on the build ``data_card`` describes (the
    ``data_card.json`` of ``birdview-train build-data``): its modalities with training images,
    its labels' names and its slice planes, added to ``base_card``'s (a fine-tune has also
    seen what its base saw), under ``name``. Body regions come from ``base_card`` only: a
    data card does not record them.

    Raises:
        ValueError: ``data_card`` is not a mapping, or the result is not a valid card.
    """
    if not isinstance(data_card, Mapping):
        raise ValueError(
            f"Unable to make a model card as the data card is {type(data_card).__name__}"
        )
    base = base_card or ModelCard(name)
    trained = base.trained_on
    return replace(
        base,
        name=name,
        trained_on=TrainedOn(
            modalities=(*trained.modalities, *_data_modalities(data_card)),
            body_regions=trained.body_regions,
            structures=(*trained.structures, *_data_structures(data_card)),
            image_kinds=(*trained.image_kinds, *_data_image_kinds(data_card)),
        ),
    )


def _data_modalities(data_card: Mapping[str, Any]) -> list[str]:
    table = data_card.get("modalities")
    if not isinstance(table, Mapping):
        return []
    return [
        MODALITY_WORDS.get(str(key), str(key))
        for key, counts in table.items()
        if not isinstance(counts, Mapping) or counts.get("train_images", 1)
    ]


def _data_structures(data_card: Mapping[str, Any]) -> list[str]:
    labels = data_card.get("labels")
    if not isinstance(labels, Mapping):
        return []
    names = []
    for label, entry in labels.items():
        name = entry.get("name") if isinstance(entry, Mapping) else None
        names.append(name if isinstance(name, str) and name.strip() else str(label))
    return names


def _data_image_kinds(data_card: Mapping[str, Any]) -> list[str]:
    settings = data_card.get("settings")
    planes = settings.get("planes") if isinstance(settings, Mapping) else None
    if not isinstance(planes, Sequence) or isinstance(planes, str):
        return []
    return [f"{plane} slice" for plane in planes if isinstance(plane, str)]
