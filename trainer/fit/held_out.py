"""Held-out evaluation of the model being trained: BiRD's inference and metrics (part 1).

The model answers the first question of each held-out Med-GRIT item through the app's
`birdview.inference.engine.Engine` (greedy, left-padded batches, the family's box format),
`trainer.predict.predict_with` writes the answers in Med-GRIT text, and
`trainer.evaluation.evaluate_file` scores them: VG (Recall@0.5) and ROC (accuracy). Caption
tasks (RC, MIA) need Java and are left to ``birdview-train evaluate``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from birdview.core.model_card import ModelCard
from trainer.evaluation import evaluate_file
from trainer.medgrit import read_items, task_of, write_items

__all__ = ["SCORED_TASKS", "evaluate_held_out", "task_of_file"]

logger = logging.getLogger(__name__)

# Med-GRIT task code → evaluation task, for the tasks scored during training.
SCORED_TASKS = {"VG": "vg", "RO": "roc"}


def task_of_file(path: str | os.PathLike) -> str | None:
    """ "vg" or "roc" from the first item's question; None for other tasks or no items."""
    items = read_items(path)
    if not items:
        return None
    code = task_of(str(items[0]["conversations"][0][0]))
    return SCORED_TASKS.get(code or "")


def evaluate_held_out(
    model: Any,
    processor: Any,
    family: str,
    files: list[Path],
    images: Path,
    out_dir: Path,
    *,
    max_items: int = 0,
    batch_size: int = 8,
    card: ModelCard | None = None,
) -> dict[str, dict[str, Any]]:
    """Predict and score each file (the first ``max_items`` items; 0 = all), asking as the
    app asks a checkpoint with the base's model card ``card``.

    Returns ``{file stem: {"task", "items", "mean", "mean_present", "per_modality"}}``; the
    model is left in training mode.
    """
    from birdview.inference.engine import Engine
    from birdview.inference.loader import LoadedModel
    from trainer.predict import predict_with

    device = next(model.parameters()).device
    loaded = LoadedModel(
        model=model,
        processor=processor,
        family=family,
        model_type=str(getattr(model.config, "model_type", "")),
        precision=str(next(model.parameters()).dtype).replace("torch.", ""),
        device=device.type,
        card=card,
    )
    engine = Engine(loaded)
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    was_training = model.training
    model.eval()
    try:
        for path in files:
            task = task_of_file(path)
            if task is None:
                logger.info("held-out %s: not a VG or ROC file, skipped", path.name)
                continue
            items = read_items(path)
            subset = out_dir / f"{path.stem}.items.json"
            write_items(subset, items[:max_items] if max_items else items)
            predictions = out_dir / f"{path.stem}.jsonl"
            predictions.unlink(missing_ok=True)
            predict_with(engine, subset, images, predictions, batch_size=batch_size, progress=False)
            scores = evaluate_file(predictions, task)
            results[path.stem] = {
                "task": task,
                "items": sum(scores.counts.values()),
                "mean": scores.mean,
                "mean_present": scores.mean_present,
                "per_modality": scores.per_modality,
            }
            logger.info(
                "held-out %s (%s): %.3f over present modalities, %.3f BiRD mean",
                path.stem, task, scores.mean_present or 0.0, scores.mean or 0.0,
            )  # fmt: skip
    finally:
        model.train(was_training)
    return results
