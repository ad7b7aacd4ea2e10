"""A per-modality bar chart of a task's headline metric, drawn with Pillow (no matplotlib)."""

from __future__ import annotations

import os
from pathlib import Path

from trainer.evaluation._scores import Scores

__all__ = ["plot_scores"]

_SIZE_PX = (900, 480)
_MARGIN_PX = (70, 50, 30, 90)  # left, top, right, bottom
_BAR = (70, 120, 190)
_MEAN = (200, 80, 60)
_GRID = (220, 220, 220)


def plot_scores(scores: Scores, out: str | os.PathLike) -> Path:
    """Write a PNG with one bar per modality (x100), the mean over the 8 as a
    line, and absent modalities marked "n/a"."""
    from PIL import Image, ImageDraw, ImageFont

    values = {m: _headline(scores, v) for m, v in scores.per_modality.items()}
    top = max([100.0] + [100 * v for v in values.values() if v is not None])
    image = Image.new("RGB", _SIZE_PX, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    left, upper, right, lower = _MARGIN_PX
    x0, y0, x1, y1 = left, upper, _SIZE_PX[0] - right, _SIZE_PX[1] - lower

    def y_of(value: float) -> float:
        return y1 - (y1 - y0) * value / top

    for tick in range(0, int(top) + 1, 20 if top <= 200 else 100):
        draw.line([(x0, y_of(tick)), (x1, y_of(tick))], fill=_GRID)
        draw.text((x0 - 35, y_of(tick) - 6), f"{tick:>3}", fill="black", font=font)
    slot = (x1 - x0) / max(1, len(values))
    for n, (modality, value) in enumerate(values.items()):
        left_px = x0 + n * slot + slot * 0.15
        right_px = x0 + (n + 1) * slot - slot * 0.15
        if value is None:
            draw.text((left_px, y1 - 16), "n/a", fill="grey", font=font)
        else:
            draw.rectangle([left_px, y_of(100 * value), right_px, y1], fill=_BAR)
            draw.text(
                (left_px, y_of(100 * value) - 14), f"{100 * value:.1f}", fill="black", font=font
            )
        draw.text((left_px, y1 + 8), modality, fill="black", font=font)
        draw.text((left_px, y1 + 22), f"n={scores.counts.get(modality, 0)}", fill="grey", font=font)
    mean = scores.headline
    if mean is not None:
        draw.line([(x0, y_of(100 * mean)), (x1, y_of(100 * mean))], fill=_MEAN, width=2)
    present = _headline(scores, scores.mean_present)
    title = f"{scores.task.upper()} {scores.metric} (x100): mean over 8 (red line) = " + _text(mean)
    title += f", mean over present = {_text(present)}"
    draw.text((x0, 15), title, fill="black", font=font)
    draw.line([(x0, y0), (x0, y1), (x1, y1)], fill="black")
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path


def _headline(scores: Scores, value):
    if isinstance(value, dict):
        return value.get(scores.metric)
    return value


def _text(value) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"
