"""A per-modality bar chart of a task's headline metric."""

from __future__ import annotations

import os
from pathlib import Path

from trainer._charts import new_figure, save_png
from trainer.evaluation._scores import Scores

__all__ = ["plot_scores"]

_SIZE_PX = (900, 480)
_BAR = "#4678be"
_MEAN = "#c8503c"


def plot_scores(scores: Scores, out: str | os.PathLike) -> Path:
    """Write a PNG with one bar per modality (x100), the mean over the 8 as a
    line, and absent modalities marked "n/a"."""
    values = {m: _headline(scores, v) for m, v in scores.per_modality.items()}
    top = max([100.0] + [100 * v for v in values.values() if v is not None])
    figure = new_figure(_SIZE_PX)
    axes = figure.add_subplot()
    positions = range(len(values))
    heights = [0.0 if v is None else 100 * v for v in values.values()]
    bars = axes.bar(positions, heights, width=0.7, color=_BAR)
    labels = ["n/a" if v is None else f"{100 * v:.1f}" for v in values.values()]
    axes.bar_label(bars, labels, padding=2, fontsize=8)
    axes.set_xticks(
        list(positions),
        [f"{m}\nn={scores.counts.get(m, 0)}" for m in values],
        fontsize=8,
    )
    axes.set_ylim(0, top * 1.08)
    axes.grid(True, axis="y", color="#dcdcdc")
    axes.set_axisbelow(True)
    mean = scores.headline
    if mean is not None:
        axes.axhline(100 * mean, color=_MEAN, linewidth=2)
    present = _headline(scores, scores.mean_present)
    axes.set_title(
        f"{scores.task.upper()} {scores.metric} (x100): mean over 8 (red line) = {_text(mean)}"
        f", mean over present = {_text(present)}",
        fontsize=9,
    )
    figure.tight_layout()
    return save_png(figure, out)


def _headline(scores: Scores, value):
    if isinstance(value, dict):
        return value.get(scores.metric)
    return value


def _text(value) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"
