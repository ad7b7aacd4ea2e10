"""The trainer's PNG charts: the loss curve and the grounding-proof curves (the per-modality
chart is checked through ``birdview-train evaluate`` in test_evaluate.py)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from experiments.grounding_proof import _plot
from trainer.fit.callbacks import plot_loss

LINE = (70, 120, 190)


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def share_of(colour, image: np.ndarray) -> float:
    return float(np.all(image == colour, axis=-1).mean())


def test_loss_curve_draws_the_logged_losses(tmp_path):
    csv_path = tmp_path / "train.csv"
    rows = "".join(f"{step},{2 / step}\n" for step in range(1, 30))
    csv_path.write_text("step,loss\n" + rows + "30,nan\n31,\n", encoding="utf-8")

    image = pixels(plot_loss(csv_path, tmp_path / "logs" / "loss.png"))

    assert image.shape == (420, 800, 3)
    assert 0.001 < share_of(LINE, image) < 0.2  # a line, not an empty or a filled plot
    # falling loss: the curve starts high on the left and ends low on the right
    ys, xs = np.nonzero(np.all(image == LINE, axis=-1))
    assert ys[xs < xs.min() + 20].mean() < ys[xs > xs.max() - 20].mean()


def test_loss_curve_of_one_step_and_of_none(tmp_path):
    csv_path = tmp_path / "train.csv"
    csv_path.write_text("step,loss\n1,0.5\n", encoding="utf-8")
    assert share_of(LINE, pixels(plot_loss(csv_path, tmp_path / "one.png"))) > 0

    csv_path.write_text("step,loss\n1,\n", encoding="utf-8")
    assert plot_loss(csv_path, tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_grounding_proof_chart_draws_both_tasks(tmp_path):
    rows = [{"minutes": 5.0, "vg": 0.2, "roc": 0.6}, {"minutes": 10.0, "vg": 0.5, "roc": None}]
    png = tmp_path / "proof.png"

    _plot(rows, png, "grounding proof")

    image = pixels(png)
    assert image.shape == (420, 800, 3)
    assert share_of(LINE, image) > 0.001 and share_of((200, 90, 60), image) > 0.001
