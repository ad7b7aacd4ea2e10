"""Med-GRIT items → conversations in the base family's box format → model inputs.

Med-GRIT text is the storage format (docs MEDGRIT.md): questions and answers carry
``<ref>label</ref><box>(x1,y1),(x2,y2)</box>`` on a 0–1000 grid. The model learns to write the
format its family writes (`birdview.core.box_codecs.CODECS`), which is also what the app parses:

* a question's boxes become the family's region text (`trainer.predict.question_for_family`,
  the same rewrite the evaluation asks with);
* an answer's runs of ``<ref>..</ref><box>..</box>`` become ``codec.encode(boxes)``: Qwen2-VL
  special tokens, or a fenced ``bbox_2d`` JSON list (0–1000 grid for Qwen3-VL/Qwen3.5, pixels
  of the processor's resized image for Qwen2.5-VL), so `trainer.predict.response_to_medgrit`
  reads them back as the same boxes.

The chat is `birdview.core.prompts.to_messages` (the image in the first user turn), the very
prompt the app's engine asks with, followed by the answers as assistant turns.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from birdview.core.box_codecs import CODECS, BoxCodec
from birdview.core.prompts import Conversation, Turn, to_messages
from trainer.fit.collate import encode_conversation
from trainer.fit.samples import Sample, read_samples
from trainer.predict import question_for_family

__all__ = [
    "ConversationDataset",
    "Sample",
    "answer_for_family",
    "chat_messages",
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
    if codec.family == "medgrit":
        return answer
    medgrit = CODECS["medgrit"]

    def rewrite(match: re.Match) -> str:
        parsed = medgrit.parse(match.group(0), image_size_px, plane="axial", slice_index=0)
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

    Raises (on access):
        ValueError: even the first turn is longer than ``max_length``.
    """

    def __init__(self, samples: list[Sample], processor: Any, family: str, max_length: int):
        self.samples = samples
        self.processor = processor
        self.codec = CODECS[family]
        self.max_length = max_length
        self.shortened = 0

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from birdview.inference.engine import model_size_px

        sample = self.samples[index]
        image = _load_rgb(sample.image)
        height, width = image.shape[:2]
        resized = model_size_px(self.processor, width, height)
        turns = turns_for_family(sample.turns, self.codec, (width, height), resized)
        for keep in range(len(turns), 0, -1):
            encoded = encode_conversation(self.processor, image, chat_messages(turns[:keep]))
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
