"""Training throughput of ``fit`` with packing against plain transformers ``Trainer`` with a
padding collator: the same tiny model, data, seed, steps and batches, in one process.

Data: ``build-data`` on the SA-Med2D demo, BraTS (every 8th slice) and BiomedParse demo
samples (multi-turn Med-GRIT items of 1–8 turns, so lengths vary as in BiRD's data). Both runs
see the same conversations in the same order (same seed), so the real (non-padding) token
count is the same and the ratio of tokens/s is the ratio of training times. Prints tokens/s of
each, the padding share of the plain run and the ratio (target: packing ≥ 1.5×).

    .venv/bin/python bench/fit_packing.py [--family KEY] [--steps 12] [--batch 8]

``--family``: a family `birdview-train tiny` builds whose training packs (default: the first
the registry lists).
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path

from birdview.inference.offline import go_offline

go_offline()

SHARED = Path(
    os.environ.get("BIRDVIEW_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
SOURCES = ["sammed2d_demo", "brats_mr?labels=1:edema", "biomedparse_demo"]


def packable_families() -> list[str]:
    """Tiny-buildable families whose conversations may share a training row."""
    from birdview.core import families

    return [key for key in families.tiny_families() if families.get(key).packing.position_function]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    choices = packable_families()
    parser.add_argument("--family", default=choices[0], choices=choices)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=8, help="conversations per step")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="fit-packing-") as temp:
        root = Path(temp)
        train, base = _inputs(root, args.family)
        plain = _plain_trainer(root, train, base, args)
        packed = _fit_packed(root, train, base, args)
    print(f"model {args.family}, {args.steps} steps of {args.batch} conversations, 1 process")
    print(
        f"plain Trainer (padded):  {plain['tokens'] / plain['seconds']:8.0f} tokens/s  "
        f"({plain['tokens']} real tokens, {plain['padding']:.0%} of the batch was padding)"
    )
    print(
        f"fit, packed:             {packed['tokens'] / packed['seconds']:8.0f} tokens/s  "
        f"({packed['tokens']} real tokens)"
    )
    ratio = (packed["tokens"] / packed["seconds"]) / (plain["tokens"] / plain["seconds"])
    print(f"ratio packed / plain:    {ratio:8.2f}x   (target >= 1.5x)")


def _inputs(root: Path, family: str) -> tuple[Path, Path]:
    from trainer.data.build import BuildSettings, build_dataset
    from trainer.tiny import build_tiny

    sources = [str(SHARED / s) for s in SOURCES]
    build_dataset(sources, root / "data", BuildSettings(slice_step=8), command="bench")
    return root / "data" / "train.json", build_tiny(family, root / "base", seed=0)


def _recipe(root: Path, train: Path, base: Path, args, name: str, pack: bool, attention: str):
    from trainer.fit.recipe import load_recipe

    return load_recipe(
        "tiny-cpu",
        [f"model.base={base}", f"data.train={train}", f"out={root / name}",
         f"model.attention={attention}",
         f"data.pack={str(pack).lower()}", f"train.max_steps={args.steps}",
         f"train.batch_size={args.batch}", f"train.per_device_batch={args.batch}",
         "train.log_every=1000", "train.save_every=100000", "eval.files=[]"],
    )  # fmt: skip


def _plain_trainer(root: Path, train: Path, base: Path, args) -> dict:
    """transformers' Trainer, right padding to the longest conversation of each batch, plain
    ``sdpa`` attention (`ThroughputTrainer` only adds the count of real tokens)."""
    from transformers import set_seed

    from trainer.fit.callbacks import ThroughputTrainer
    from trainer.fit.collate import PadCollator
    from trainer.fit.dataset import ConversationDataset, read_samples
    from trainer.fit.model import load_for_training
    from trainer.fit.run import training_arguments

    recipe = _recipe(root, train, base, args, "plain", pack=False, attention="sdpa")
    set_seed(recipe.train.seed)
    model, processor = load_for_training(recipe.model, recipe.data)
    dataset = ConversationDataset(read_samples(train, train.parent), processor, args.family, 1024)
    pad = PadCollator(processor.tokenizer.pad_token_id)
    counts = {"tokens": 0, "cells": 0}

    def collate(items):
        batch = pad(items)
        counts["tokens"] += int(batch["attention_mask"].sum())
        counts["cells"] += batch["attention_mask"].numel()
        return batch

    trainer = ThroughputTrainer(
        model=model,
        args=training_arguments(recipe, root / "plain", progress=False),
        train_dataset=dataset,
        data_collator=collate,
        pad_id=processor.tokenizer.pad_token_id,
    )
    result = trainer.train()
    padding = 1 - counts["tokens"] / counts["cells"]  # of the collated batches
    seconds = float(result.metrics["train_runtime"])
    return {"tokens": trainer.real_tokens, "seconds": seconds, "padding": padding}


def _fit_packed(root: Path, train: Path, base: Path, args) -> dict:
    from trainer.fit.run import fit

    recipe = _recipe(root, train, base, args, "packed", pack=True, attention="sdpa_varlen")
    result = fit(recipe, progress=False)
    return {"tokens": result.tokens, "seconds": result.seconds}  # the Trainer's train_runtime


if __name__ == "__main__":
    main()
