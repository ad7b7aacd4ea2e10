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
from dataclasses import replace
from pathlib import Path

from birdview.core.model_card import ModelCard, card_from_data_card, read_card, write_card
from trainer.fit.checkpoint import read_metadata

__all__ = ["write_checkpoint_card"]

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
