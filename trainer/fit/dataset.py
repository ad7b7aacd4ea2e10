"""Med-GRIT items → conversations in the base family's box format → model inputs.

Med-GRIT text is the storage format (as in Med-GRIT-270k, BiRD's data): questions and answers carry
``<ref>label</ref><box>(x1,y1),(x2,y2)</box>`` on a 0–1000 grid. The model learns to write the
format its family writes (the family's codec in `birdview.core.families`), which is also what
the app parses. A box in the data stays the same box; only its text changes:

* a question's boxes become the family's region text (`trainer.predict.question_for_family`,
  the same rewrite the evaluation asks with);
* an answer's runs of ``<ref>..</ref><box>..</box>`` become ``codec.encode(boxes)``: special
  -token tags, or a fenced JSON list (x or y first, on the 0–1000 grid of the image or of the
  image padded to a square, or in pixels of the processor's resized image), so
  `trainer.predict.response_to_medgrit` reads them back as the same boxes.

Images are prepared as the app prepares them (`birdview.core.model_input.pad_to_square` for
families that pad to a square first), so the pixels and the padded grid of the boxes agree.
A base whose model card names another family's text conventions or changes its box
convention or padding (`conventions_of`) is trained in its own convention: the fine-tune
inherits the card, and the app reads it by it.

The chat is `birdview.core.prompts.to_messages` (the image in the first user turn), the very
prompt the app's engine asks with, followed by the answers as assistant turns.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from birdview.core import families
from birdview.core.box_codecs import MEDGRIT, BoxCodec
from birdview.core.conventions import Conventions, conventions_of
from birdview.core.model_card import ModelCard
from birdview.core.model_input import pad_to_square
from birdview.core.prompts import Conversation, Turn, to_messages
from trainer.fit.collate import encode_conversation
from trainer.fit.samples import Sample, read_samples
from trainer.predict import question_for_family

__all__ = [
    "ConversationDataset",
    "Sample",
    "answer_for_family",
    "Conventions",
    "chat_messages",
    "conventions_of",
    "read_samples",
    "turns_for_family",
]

logger = logging.getLogger(__name__)

SizePx = tuple[float, float]
# A run of Med-GRIT box markup: labelled or bare boxes, back to back.
_RUN_RE = re.compile(r"(?:(?:<ref>[^<]*</ref>)?(?:\s*<box>[^<]*</box>)+)+")


# -- boxes in the family's format -----------------------------------------------------------


def answer_for_family(
    answer: str, codec: BoxCodec, image_size_px: SizePx, model_size_px: SizePx | None = None
) -> str:
    """``answer`` with each run of Med-GRIT box markup written as ``codec`` writes boxes;
    a run that does not read as boxes is left as it is."""
    if codec == MEDGRIT:
        return answer

    def rewrite(match: re.Match) -> str:
        parsed = MEDGRIT.parse(match.group(0), image_size_px, plane="axial", slice_index=0)
        if not parsed.boxes or parsed.dropped:
            return match.group(0)
        return codec.encode(parsed.boxes, image_size_px, model_size_px=model_size_px)

    return _RUN_RE.sub(rewrite, answer)


def turns_for_family(
    turns: tuple[tuple[str, str], ...],
    codec: BoxCodec,
    image_size_px: SizePx,
    model_size_px: SizePx | None = None,
) -> list[tuple[str, str]]:
    """Every turn with its boxes in ``codec``'s format (questions as the evaluation asks)."""
    return [
        (
            question_for_family(q, codec, image_size_px, model_size_px),
            answer_for_family(a, codec, image_size_px, model_size_px),
        )
        for q, a in turns
    ]


def chat_messages(turns: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Hugging Face chat messages: the app's prompt for the last question after the earlier
    turns (`to_messages`), then the last answer as the final assistant turn."""
    history = Conversation(tuple(Turn(q, a) for q, a in turns[:-1]))
    messages = to_messages(history, turns[-1][0])
    messages.append({"role": "assistant", "content": [{"type": "text", "text": turns[-1][1]}]})
    return messages


# -- the dataset ----------------------------------------------------------------------------


class ConversationDataset:
    """Samples encoded for the model on demand (a map-style torch dataset).

    Item ``i`` is `trainer.fit.collate.encode_conversation` of sample ``i``: the whole
    conversation, or its first turns when the whole is longer than ``max_length`` tokens.
    ``family`` is the base's key in `birdview.core.families`, ``card`` its model card.

    Raises (on access):
        ValueError: even the first turn is longer than ``max_length``.
    """

    def __init__(
        self,
        samples: list[Sample],
        processor: Any,
        family: str,
        max_length: int,
        card: ModelCard | None = None,
    ):
        self.samples = samples
        self.processor = processor
        self.family = families.get(family)
        self.conventions = conventions_of(self.family, card)
        self.codec = self.conventions.codec
        self.max_length = max_length
        self.shortened = 0

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from birdview.inference.engine import model_size_px

        sample = self.samples[index]
        image = _load_rgb(sample.image)
        height, width = image.shape[:2]
        resized = model_size_px(self.processor, width, height, self.conventions.family)
        # The codec maps boxes through the padding itself, so it gets the image's own size.
        turns = turns_for_family(sample.turns, self.codec, (width, height), resized)
        pixels = pad_to_square(image) if self.conventions.pad_to_square else image
        for keep in range(len(turns), 0, -1):
            messages = chat_messages(turns[:keep])
            encoded = encode_conversation(self.processor, pixels, messages, self.family)
            if len(encoded["input_ids"]) <= self.max_length:
                if keep < len(turns):
                    self.shortened += 1
                    logger.debug("item %r: kept %d of %d turns", sample.item_id, keep, len(turns))
                return encoded
        raise ValueError(
            f"Unable to train on item {sample.item_id!r} as its first turn alone is "
            f"{len(encoded['input_ids'])} tokens, over data.max_length {self.max_length}; "
            "raise data.max_length or lower data.max_pixels"
        )


def _load_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.array(image.convert("RGB"))
