"""Conversations → token ids and labels through the model's own processor; batches, padded
or packed.

Labels: only the assistant's tokens count. The chat template renders each answer as
``<|im_start|>assistant\\n{answer}<|im_end|>\\n``; the tokens after the header up to and
including ``<|im_end|>`` keep their ids as labels, everything else (system, user turns, image
tokens, the header, the newline after ``<|im_end|>``, padding) is -100.

Packing (`PackCollator`): the conversations of a batch are laid end to end in rows of at most
``capacity`` tokens (first fit, longest first), so no compute goes to padding. Each keeps its
own positions: Qwen-VL's multimodal RoPE needs 3 position ids per token (temporal, height,
width; `get_rope_index` of the model, per conversation), and transformers reads a fourth, text
row of positions restarting at 0 at each conversation (``position_ids`` of shape
(4, rows, length), no ``attention_mask``, no cache) to build a block-diagonal causal mask for
eager, sdpa and flash attention alike, so no conversation sees another (BiRD's packing
leaked). A row shorter than the longest ends in a padding segment with its own restarting
positions. Models with linear-attention layers (Qwen3.5) carry a recurrent state across the
row on the torch fallback path, so they are not packed (`trainer.fit.model.can_pack`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["IGNORE", "PackCollator", "PadCollator", "assistant_labels", "encode_conversation"]

logger = logging.getLogger(__name__)

IGNORE = -100
_HEADER = "<|im_start|>assistant\n"
_END = "<|im_end|>"


def encode_conversation(
    processor: Any, image: np.ndarray, messages: list[dict[str, Any]]
) -> dict[str, torch.Tensor]:
    """One conversation as unpadded tensors: ``input_ids``, ``labels``, ``mm_token_type_ids``
    (length L), ``pixel_values`` (patches × features) and ``image_grid_thw`` (1 × 3).

    Raises:
        ValueError: the rendered chat has no assistant turn to learn from.
    """
    text = processor.apply_chat_template(messages, tokenize=False)
    image = np.array(image)  # writable: torch warns on read-only arrays
    batch = processor(text=[text], images=[image], return_tensors="pt")
    ids = batch["input_ids"][0]
    labels = assistant_labels(ids, processor.tokenizer)
    if not (labels != IGNORE).any():
        raise ValueError(
            "Unable to encode a conversation as its chat template rendered no "
            f"{_HEADER!r} turn; the base's template must be ChatML"
        )
    kinds = batch.get("mm_token_type_ids")
    if kinds is None:
        kinds = torch.zeros_like(ids)
    return {
        "input_ids": ids,
        "labels": labels,
        "mm_token_type_ids": kinds[0] if kinds.ndim == 2 else kinds,
        "pixel_values": batch["pixel_values"],
        "image_grid_thw": batch["image_grid_thw"],
    }


def assistant_labels(ids: torch.Tensor, tokenizer: Any) -> torch.Tensor:
    """``ids`` where the tokens are an assistant's answer or its ``<|im_end|>``, else -100."""
    header = tokenizer.encode(_HEADER, add_special_tokens=False)
    end = tokenizer.convert_tokens_to_ids(_END)
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
        stop = min(stop + 1, n)  # <|im_end|> included
        labels[start:stop] = ids[start:stop]
        i = stop
    return labels


class PadCollator:
    """A right-padded batch with an attention mask (the plain Trainer path)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, items: Sequence[dict[str, torch.Tensor]]) -> dict[str, Any]:
        length = max(len(item["input_ids"]) for item in items)
        batch = _blank(len(items), length, self.pad_id)
        batch["attention_mask"] = torch.zeros((len(items), length), dtype=torch.long)
        for row, item in enumerate(items):
            n = len(item["input_ids"])
            for key in ("input_ids", "labels", "mm_token_type_ids"):
                batch[key][row, :n] = item[key]
            batch["attention_mask"][row, :n] = 1
        return _with_images(batch, items)


class PackCollator:
    """Conversations packed into rows of at most ``capacity`` tokens with per-conversation
    positions (see the module docstring). ``rope_index`` is the model's ``get_rope_index``."""

    def __init__(self, pad_id: int, capacity: int, rope_index: Callable[..., Any]) -> None:
        self.pad_id = pad_id
        self.capacity = capacity
        self.rope_index = rope_index

    def __call__(self, items: Sequence[dict[str, torch.Tensor]]) -> dict[str, Any]:
        rows = pack_rows([len(item["input_ids"]) for item in items], self.capacity)
        length = max(sum(len(items[i]["input_ids"]) for i in row) for row in rows)
        batch = _blank(len(rows), length, self.pad_id)
        positions = torch.zeros((4, len(rows), length), dtype=torch.long)
        ordered = []
        for r, row in enumerate(rows):
            at = 0
            for i in row:
                item = items[i]
                n = len(item["input_ids"])
                for key in ("input_ids", "labels", "mm_token_type_ids"):
                    batch[key][r, at : at + n] = item[key]
                positions[0, r, at : at + n] = torch.arange(n)
                positions[1:, r, at : at + n] = self._mrope(item)
                ordered.append(item)
                at += n
            positions[:, r, at:] = torch.arange(length - at)  # the padding's own segment
        batch["position_ids"] = positions
        return _with_images(batch, ordered)

    def _mrope(self, item: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            mrope, _ = self.rope_index(
                item["input_ids"][None],
                mm_token_type_ids=item["mm_token_type_ids"][None],
                image_grid_thw=item["image_grid_thw"],
            )
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


def _blank(rows: int, length: int, pad_id: int) -> dict[str, Any]:
    """Padding everywhere; ``use_cache=False``: with a cache transformers builds a plain
    causal mask and packed conversations would see each other (and training needs none)."""
    return {
        "input_ids": torch.full((rows, length), pad_id, dtype=torch.long),
        "labels": torch.full((rows, length), IGNORE, dtype=torch.long),
        "mm_token_type_ids": torch.zeros((rows, length), dtype=torch.long),
        "use_cache": False,
    }


def _with_images(batch: dict[str, Any], items: Sequence[dict[str, torch.Tensor]]) -> dict[str, Any]:
    """Image tensors in the order the image tokens appear, row by row."""
    batch["pixel_values"] = torch.cat([item["pixel_values"] for item in items])
    batch["image_grid_thw"] = torch.cat([item["image_grid_thw"] for item in items])
    return batch
