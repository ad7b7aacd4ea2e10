"""Packing into sequences (BiRD's ``mixtoken``) and what a step of a recipe holds.

Two packings (``data.pack_into``):

* ``batch``: a batch of ``train.per_device_batch`` conversations is laid end to end in as few
  rows as fit (`trainer.fit.collate.PackCollator`); the batch sizes count conversations.
* ``sequences``: as BiRD trained (``"mixtoken": true`` in ShawnHuang497/BiRD,
  paddlemix/config/BiRD/sft_argument_stage2.json, which wraps the data in PaddleMIX's
  ``MIXTokenMapDataset``, paddlemix/datasets/mixtoken_dataset.py): before training, every
  conversation is encoded once to measure it, and conversations in data order fill sequences
  of at most ``data.max_length`` tokens, a new sequence starting when the next one does not
  fit. A sequence is one training example: the batch sizes count sequences, and the
  conversations per step follow from how many fit in one. Unlike PaddleMIX's, whose collator
  replaced the block mask with a plain padding mask, no conversation attends to another
  (`trainer.fit.collate`).

`StepPlan` says what one optimiser step holds, in conversations and tokens, from the recipe,
the process count and the conversations' mean length; ``fit`` prints it at the start and
``fit --dry-run`` prints it without loading the model.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from birdview.core import families
from trainer._json_stream import read_json
from trainer.fit.recipe import Recipe

__all__ = [
    "PackedSequences",
    "SequenceCollator",
    "StepPlan",
    "dry_run_plan",
    "measure",
    "sequence_packs",
    "step_plan",
]

logger = logging.getLogger(__name__)


def sequence_packs(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices in order, grouped into runs whose lengths sum to at most ``capacity`` (next
    fit, as MIXTokenMapDataset: a run closes when the next item does not fit)."""
    packs: list[list[int]] = []
    used = capacity + 1  # no open run yet
    for index, length in enumerate(lengths):
        if used + length > capacity:
            packs.append([])
            used = 0
        packs[-1].append(index)
        used += length
    return packs


def measure(dataset: Any, indices: Sequence[int] | None = None, workers: int = 0) -> list[int]:
    """Token counts of the dataset's encoded conversations (all, or those at ``indices``),
    encoded by ``workers`` loader processes (0: in this one), as the training batches are."""
    chosen = list(range(len(dataset)) if indices is None else indices)
    if workers < 1:
        return [len(dataset[i]["input_ids"]) for i in chosen]
    from torch.utils.data import DataLoader, Subset

    loader = DataLoader(
        Subset(dataset, chosen), batch_size=None, num_workers=workers, collate_fn=_token_count
    )
    return list(loader)


def _token_count(item: dict[str, Any]) -> int:
    return len(item["input_ids"])


def sample_mean_length(dataset: Any, count: int = 64, seed: int = 0) -> float:
    """The mean token count of up to ``count`` conversations drawn at random."""
    indices = random.Random(seed).sample(range(len(dataset)), min(count, len(dataset)))
    lengths = measure(dataset, indices)
    return sum(lengths) / len(lengths)


class PackedSequences:
    """``dataset``'s conversations packed into sequences of at most ``capacity`` tokens (a
    map-style torch dataset of packs). ``lengths``: the conversations' token counts when
    known, else they are measured here (every conversation encoded once, by ``workers``
    loader processes)."""

    def __init__(
        self,
        dataset: Any,
        capacity: int,
        lengths: Sequence[int] | None = None,
        workers: int = 0,
    ):
        self.dataset = dataset
        self.lengths = list(lengths) if lengths is not None else measure(dataset, None, workers)
        self.packs = sequence_packs(self.lengths, capacity)

    def __len__(self) -> int:
        return len(self.packs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"conversations": [self.dataset[i] for i in self.packs[index]]}

    @property
    def mean_length(self) -> float:
        return sum(self.lengths) / max(len(self.lengths), 1)


class SequenceCollator:
    """Packs (`PackedSequences` items) → one batch: each pack a row of its own, or, with
    attention that splits a row by conversation (``one_row``), all in one row with no
    padding at all. ``pack``: a `trainer.fit.collate.PackCollator`."""

    def __init__(self, pack: Any, *, one_row: bool) -> None:
        self.pack = pack
        self.one_row = one_row

    def __call__(self, packs: Sequence[dict[str, Any]]) -> dict[str, Any]:
        items = [item for pack in packs for item in pack["conversations"]]
        if self.one_row:
            return self.pack(items, rows=[list(range(len(items)))])
        rows, at = [], 0
        for pack in packs:
            rows.append(list(range(at, at + len(pack["conversations"]))))
            at += len(pack["conversations"])
        return self.pack(items, rows=rows)


# -- what a step holds ---------------------------------------------------------------------


@dataclass(frozen=True)
class StepPlan:
    """One optimiser step of a recipe on ``processes`` processes.

    ``examples``: training examples per step (conversations, or packed sequences when
    ``unit`` is "sequences"); ``conversations``: conversations per step (estimated from the
    mean length when they are packed into sequences); ``tokens``: real tokens per step
    (estimated); ``max_tokens``: the most a step can hold when examples are sequences or
    padded rows of ``data.max_length``."""

    per_device: int
    accumulation: int
    processes: int
    unit: str
    packing: str
    mean_length: float
    max_length: int
    per_sequence: float

    @property
    def examples(self) -> int:
        return self.per_device * self.accumulation * self.processes

    @property
    def conversations(self) -> float:
        return self.examples * (self.per_sequence if self.unit == "sequences" else 1)

    @property
    def tokens(self) -> float:
        return self.conversations * self.mean_length

    @property
    def max_tokens(self) -> int:
        return self.examples * self.max_length

    def describe(self) -> str:
        """Two lines: the batch arithmetic and packing, then conversations and tokens."""
        arithmetic = (
            f"{self.per_device} per device × {self.accumulation} accumulated × "
            f"{self.processes} processes, {self.packing}"
        )
        if self.unit == "sequences":
            content = (
                f"effective batch {self.examples} sequences of ≤ {self.max_length} tokens ≈ "
                f"{self.conversations:.0f} conversations per optimiser step "
                f"({self.per_sequence:.1f} per sequence at a mean of {self.mean_length:.0f} "
                f"tokens), ≈ {self.tokens:,.0f} tokens per step (at most {self.max_tokens:,})"
            )
        else:
            content = (
                f"effective batch {self.examples} conversations per optimiser step, "
                f"≈ {self.tokens:,.0f} tokens per step at a mean of {self.mean_length:.0f} "
                "tokens per conversation"
            )
        return f"{arithmetic}\n{content}"


def step_plan(
    recipe: Recipe,
    processes: int,
    accumulation: int,
    mean_length: float,
    per_sequence: float | None = None,
) -> StepPlan:
    """What one step of ``recipe`` holds. ``per_sequence``: conversations per packed
    sequence when the packs are made; else estimated as the whole conversations of mean
    length that fit in ``data.max_length``."""
    data = recipe.data
    unit = "sequences" if data.pack and data.pack_into == "sequences" else "conversations"
    if not data.pack:
        packing = "padded (one conversation per row)"
    elif unit == "sequences":
        packing = f"packed into sequences of ≤ {data.max_length} tokens (BiRD's mixtoken)"
    else:
        packing = "packed batch by batch"
    if per_sequence is None:
        per_sequence = max(1, data.max_length // max(round(mean_length), 1))
    return StepPlan(
        per_device=recipe.train.per_device_batch,
        accumulation=accumulation,
        processes=processes,
        unit=unit,
        packing=packing,
        mean_length=mean_length,
        max_length=data.max_length,
        per_sequence=per_sequence,
    )


def dry_run_plan(recipe: Recipe, samples: Sequence[Any], count: int = 256) -> StepPlan:
    """The `StepPlan` of ``recipe`` from the base's processor alone (no weights): up to
    ``count`` conversations, taken in data order at random places, are encoded and measured;
    when packing into sequences, they are packed as ``fit`` packs all of them."""
    from birdview.core.model_card import read_card
    from trainer.fit.dataset import ConversationDataset
    from trainer.fit.model import load_processor
    from trainer.fit.start import accumulation, world_size

    processor = load_processor(recipe.model.base, recipe.data)
    family = _family_key(recipe.model.base)
    card = read_card(recipe.model.base)
    dataset = ConversationDataset(list(samples), processor, family, recipe.data.max_length, card)
    chosen = sorted(random.Random(0).sample(range(len(dataset)), min(count, len(dataset))))
    lengths = measure(dataset, chosen)
    per_sequence = len(lengths) / len(sequence_packs(lengths, recipe.data.max_length))
    mean = sum(lengths) / len(lengths)
    logger.info("measured %d of %d conversations", len(lengths), len(dataset))
    return step_plan(recipe, world_size(), accumulation(recipe), mean, per_sequence)


def _family_key(base: str) -> str:
    return families.for_config(read_json(os.path.join(base, "config.json"))).key
