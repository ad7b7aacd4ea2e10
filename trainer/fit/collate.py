"""Conversations → token ids and labels through the model's own processor; batches, padded
or packed.

Labels: only the assistant's tokens count. The chat template opens each answer with the
family's assistant header (`birdview.core.families.ChatMarkup`; ChatML's
``<|im_start|>assistant\\n``) and closes it with its end-of-turn token; the tokens after the
header up to and including that token keep their ids as labels, everything else (system, user
turns, image tokens, the header, what follows the end of turn, padding) is -100.

Batches carry what the processor returns besides the ids: the token-type ids it names
(``mm_token_type_ids`` or ``token_type_ids``; padding is text, 0) and the family's image
tensors (``family.pixel_keys``), concatenated in the order the images appear.

Packing (`PackCollator`): the conversations of a batch are laid end to end in rows of at most
``capacity`` tokens (first fit, longest first), so no compute goes to padding. Each keeps its
own positions: multimodal RoPE needs 3 position ids per token (temporal, height, width; the
family's position function, per conversation), and transformers reads a fourth, text row of
positions restarting at 0 at each conversation (``position_ids`` of shape (4, rows, length),
no ``attention_mask``, no cache) to build a block-diagonal causal mask for eager, sdpa and
flash attention alike, so no conversation sees another (BiRD's packing leaked). A row shorter
than the longest ends in a padding segment with its own restarting positions. Families whose
models cannot be packed (linear-attention state, attention within an image that packed rows do
not carry) say why (`trainer.fit.model.can_pack`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from birdview.core.families import ChatMarkup, Family

__all__ = ["IGNORE", "PackCollator", "PadCollator", "assistant_labels", "encode_conversation"]

logger = logging.getLogger(__name__)

IGNORE = -100
# Per-token kinds (text or image) as processors name them; a model that reads them (for
# attention within an image, or multimodal RoPE) needs them in training too.
_TYPE_ID_KEYS = ("mm_token_type_ids", "token_type_ids")


def encode_conversation(
    processor: Any, image: np.ndarray, messages: list[dict[str, Any]], family: Family
) -> dict[str, torch.Tensor]:
    """One conversation as unpadded tensors: ``input_ids``, ``labels`` and the token-type ids
    the processor returns (each of length L), and the family's image tensors
    (``family.pixel_keys``) as the processor returns them for one image.

    Raises:
        ValueError: the rendered chat has no assistant turn to learn from.
    """
    text = processor.apply_chat_template(messages, tokenize=False)
    image = np.array(image)  # writable: torch warns on read-only arrays
    batch = processor(text=[text], images=[image], return_tensors="pt")
    ids = batch["input_ids"][0]
    labels = assistant_labels(ids, processor.tokenizer, family.chat)
    if not (labels != IGNORE).any():
        raise ValueError(
            "Unable to encode a conversation as its chat template rendered no "
            f"{family.chat.assistant_header!r} turn, which opens an answer in "
            f"{family.title}'s chat; the base's chat template must be its family's"
        )
    encoded = {"input_ids": ids, "labels": labels}
    for key in _TYPE_ID_KEYS:
        if batch.get(key) is not None:
            encoded[key] = batch[key][0]
    for key in family.pixel_keys:
        encoded[key] = batch[key]
    return encoded


def assistant_labels(ids: torch.Tensor, tokenizer: Any, chat: ChatMarkup) -> torch.Tensor:
    """``ids`` where the tokens are an assistant's answer or the end-of-turn token that
    closes it (``chat.end_of_turn``), else -100."""
    header = tokenizer.encode(chat.assistant_header, add_special_tokens=False)
    end = tokenizer.convert_tokens_to_ids(chat.end_of_turn)
    values = ids.tolist()
    labels = torch.full_like(ids, IGNORE)
    n, i = len(values), 0
    while i < n:
        if values[i : i + len(header)] != header:
            i += 1
            continue
        start = i + len(header)
        stop = start
        while stop < n and values[stop] != end:
            stop += 1
        stop = min(stop + 1, n)  # the end-of-turn token included
        labels[start:stop] = ids[start:stop]
        i = stop
    return labels


class PadCollator:
    """A right-padded batch with an attention mask (the plain Trainer path)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, items: Sequence[dict[str, torch.Tensor]]) -> dict[str, Any]:
        length = max(len(item["input_ids"]) for item in items)
        batch = _blank(items, len(items), length, self.pad_id)
        batch["attention_mask"] = torch.zeros((len(items), length), dtype=torch.long)
        for row, item in enumerate(items):
            n = len(item["input_ids"])
            for key in _token_keys(item):
                batch[key][row, :n] = item[key]
            batch["attention_mask"][row, :n] = 1
        return _with_images(batch, items)


class PackCollator:
    """Conversations packed into rows of at most ``capacity`` tokens with per-conversation
    positions (see the module docstring). ``rope_index`` is the model's position function
    (`trainer.fit.model.rope_index_of`)."""

    def __init__(self, pad_id: int, capacity: int, rope_index: Callable[..., Any]) -> None:
        self.pad_id = pad_id
        self.capacity = capacity
        self.rope_index = rope_index

    def __call__(
        self, items: Sequence[dict[str, torch.Tensor]], rows: list[list[int]] | None = None
    ) -> dict[str, Any]:
        """``rows``: which items share each row, when the caller has packed them already
        (`trainer.fit.packing`); else they are packed here up to ``capacity``."""
        if rows is None:
            rows = pack_rows([len(item["input_ids"]) for item in items], self.capacity)
        length = max(sum(len(items[i]["input_ids"]) for i in row) for row in rows)
        batch = _blank(items, len(rows), length, self.pad_id)
        positions = torch.zeros((4, len(rows), length), dtype=torch.long)
        ordered = []
        for r, row in enumerate(rows):
            at = 0
            for i in row:
                item = items[i]
                n = len(item["input_ids"])
                for key in _token_keys(item):
                    batch[key][r, at : at + n] = item[key]
                positions[0, r, at : at + n] = torch.arange(n)
                positions[1:, r, at : at + n] = self._mrope(item)
                ordered.append(item)
                at += n
            positions[:, r, at:] = torch.arange(length - at)  # the padding's own segment
        batch["position_ids"] = positions
        return _with_images(batch, ordered)

    def _mrope(self, item: dict[str, torch.Tensor]) -> torch.Tensor:
        # The position function takes the token types and image grids by the processor's names.
        kinds = {k: item[k][None] for k in _token_keys(item) if k not in ("input_ids", "labels")}
        grids = {k: item[k] for k in _image_keys(item) if k != "pixel_values"}
        with torch.no_grad():
            mrope, _ = self.rope_index(item["input_ids"][None], **kinds, **grids)
        return mrope[:, 0]


def pack_rows(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices grouped into rows of total length at most ``capacity`` (first fit, longest
    first; a longer single item gets a row of its own); rows keep the items' input order."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda k: -lengths[k]):
        for r, free in enumerate(room):
            if lengths[i] <= free:
                rows[r].append(i)
                room[r] -= lengths[i]
                break
        else:
            rows.append([i])
            room.append(capacity - lengths[i])
    return [sorted(row) for row in rows]


def _token_keys(item: dict[str, torch.Tensor]) -> list[str]:
    """The item's per-token tensors (ids, labels, token types): one value per token."""
    return [key for key, value in item.items() if value.ndim == 1]


def _image_keys(item: dict[str, torch.Tensor]) -> list[str]:
    return [key for key, value in item.items() if value.ndim != 1]


def _blank(
    items: Sequence[dict[str, torch.Tensor]], rows: int, length: int, pad_id: int
) -> dict[str, Any]:
    """Padding everywhere (token types 0: text); ``use_cache=False``: with a cache
    transformers builds a plain causal mask and packed conversations would see each other (and
    training needs none)."""
    batch: dict[str, Any] = {
        key: torch.zeros((rows, length), dtype=torch.long) for key in _token_keys(items[0])
    }
    batch["input_ids"].fill_(pad_id)
    batch["labels"].fill_(IGNORE)
    batch["use_cache"] = False
    return batch


def _with_images(batch: dict[str, Any], items: Sequence[dict[str, torch.Tensor]]) -> dict[str, Any]:
    """Image tensors in the order the image tokens appear, row by row."""
    for key in _image_keys(items[0]):
        batch[key] = torch.cat([item[key] for item in items])
    return batch
