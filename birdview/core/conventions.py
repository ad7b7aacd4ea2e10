"""How a checkpoint writes boxes and is shown images: its family's conventions as its model
card changes them. The app's engine and the trainer read a checkpoint through this one rule,
so a fine-tune is asked the way it was taught."""

from __future__ import annotations

from dataclasses import dataclass, replace

from birdview.core import families
from birdview.core.box_codecs import BoxCodec
from birdview.core.families import Family
from birdview.core.model_card import ModelCard, Overrides

__all__ = ["Conventions", "conventions_of"]


@dataclass(frozen=True)
class Conventions:
    """The family whose text conventions the checkpoint follows (and its resize rule), its
    codec, whether images are padded to a square, and the card's other overrides."""

    family: Family
    codec: BoxCodec
    pad_to_square: bool
    overrides: Overrides = Overrides()


def conventions_of(family: Family, card: ModelCard | None = None) -> Conventions:
    """The conventions of a checkpoint of ``family`` (its architecture's) as ``card`` changes
    them: the card may name another family's, and override the box convention and padding."""
    if card is not None and card.family:
        family = families.get(card.family)
    overrides = card.overrides if card is not None else Overrides()
    codec = overrides.box.apply(family.codec)
    pad = overrides.pad_to_square
    if pad is None:
        return Conventions(family, codec, family.image.pad_to_square, overrides)
    # Padding the image moves the box grid with it.
    return Conventions(family, replace(codec, pad_to_square=pad), pad, overrides)
