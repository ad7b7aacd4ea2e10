"""What a fit reports while it runs: throughput, a CSV of the logs, a loss curve, and the
held-out evaluation at the end of every epoch.

The progress bar is the Trainer's own (tqdm). TensorBoard is written by the Trainer
(``report_to``) when the ``tensorboard`` package is installed; the CSV and PNG always are.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback

from birdview.core.files import write_atomic
from birdview.core.model_card import ModelCard
from trainer._charts import new_figure, save_png
from trainer.fit.held_out import evaluate_held_out

__all__ = ["HeldOutEval", "MetricsLog", "ThroughputTrainer", "plot_loss"]

logger = logging.getLogger(__name__)

TRAIN_COLUMNS = ("step", "epoch", "loss", "learning_rate", "grad_norm", "tokens_per_s", "seconds")
EVAL_COLUMNS = ("epoch", "step", "file", "task", "items", "mean", "mean_present")
# In each checkpoint folder: the run's elapsed seconds at that save, for a resumed train.csv.
ELAPSED_FILE = "birdview_elapsed.json"


class ThroughputTrainer(Trainer):
    """transformers' `Trainer` that also logs ``tokens_per_s``: real (non-padding) tokens
    trained on per second of wall time since the previous log (a held-out evaluation in the
    window counts as time), summed over processes. ``real_tokens`` counts this process's
    tokens over the whole run."""

    def __init__(self, *args: Any, pad_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pad_id = pad_id
        self.real_tokens = 0
        self._window_tokens = 0
        self._window_start: float | None = None  # the first batch starts the clock

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self._window_start is None:
            self._window_start = time.perf_counter()
        tokens = int((inputs["input_ids"] != self.pad_id).sum())
        self.real_tokens += tokens
        self._window_tokens += tokens
        return super().compute_loss(
            model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
        )

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._window_start is not None:
            now = time.perf_counter()
            count = torch.tensor(self._window_tokens, device=self.args.device)
            total = int(self.accelerator.reduce(count, reduction="sum"))
            logs["tokens_per_s"] = round(total / max(now - self._window_start, 1e-9), 1)
            self._window_tokens, self._window_start = 0, now
        super().log(logs, start_time)


class MetricsLog(TrainerCallback):
    """``logs/train.csv`` (one row per log: step, epoch, loss, lr, grad norm, tokens/s,
    seconds since the run started) and ``logs/loss.png``, on the main process.

    A resumed run first drops rows past the step it resumes from, and its seconds go on from
    the checkpoint's: each checkpoint folder gets ``ELAPSED_FILE`` with the seconds at its
    save; a checkpoint without one (killed between the save and the callback, or written
    before the file existed) goes on from the last kept row's seconds. Time spent while the
    run was down is not counted."""

    def __init__(self, logs_dir: Path) -> None:
        self.csv_path = logs_dir / "train.csv"
        self.png_path = logs_dir / "loss.png"
        self.started = time.perf_counter()
        self.offset = 0.0  # the resumed checkpoint's elapsed seconds

    def elapsed(self) -> float:
        """Seconds of the run so far, earlier legs of a resumed run included."""
        return self.offset + time.perf_counter() - self.started

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        rows = _read_rows(self.csv_path)
        kept = [r for r in rows if int(float(r["step"])) <= state.global_step]
        _write_rows(self.csv_path, TRAIN_COLUMNS, kept)
        if state.global_step > 0:
            self.offset = self._resumed_elapsed(args, state.global_step, kept)

    def _resumed_elapsed(self, args, step: int, kept: list[dict[str, str]]) -> float:
        saved = _read_json(Path(args.output_dir) / f"checkpoint-{step}" / ELAPSED_FILE)
        seconds = saved.get("seconds")
        if isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds >= 0:
            return float(seconds)
        for row in reversed(kept):
            try:
                value = float(row.get("seconds") or "")
            except ValueError:
                continue
            if math.isfinite(value) and value >= 0:
                return value
        return 0.0

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            text = json.dumps({"step": state.global_step, "seconds": round(self.elapsed(), 2)})
            write_atomic(folder / ELAPSED_FILE, text + "\n", mode=0o666)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        row = {
            "step": state.global_step,
            "epoch": round(state.epoch or 0.0, 4),
            "loss": logs.get("loss"),
            "learning_rate": logs.get("learning_rate"),
            "grad_norm": logs.get("grad_norm"),
            "tokens_per_s": logs.get("tokens_per_s"),
            "seconds": round(self.elapsed(), 2),
        }
        _append_row(self.csv_path, TRAIN_COLUMNS, row)

    def on_epoch_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            plot_loss(self.csv_path, self.png_path)

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            plot_loss(self.csv_path, self.png_path)


class HeldOutEval(TrainerCallback):
    """At the end of every epoch the main process predicts the held-out files with the model
    being trained and scores them (`trainer.fit.held_out`); rows go to ``logs/eval.csv`` and
    all results to ``logs/eval.json`` (``results``: "epoch K" → file → scores). Skipped when
    the model is sharded (FSDP, ZeRO-3): score the saved checkpoint with ``birdview-train
    predict`` instead."""

    def __init__(
        self,
        processor: Any,
        family: str,
        files: list[Path],
        images: Path,
        out: Path,
        *,
        max_items: int,
        batch_size: int,
        sharded: bool,
        card: ModelCard | None = None,
    ) -> None:
        self.processor = processor
        self.family = family
        self.card = card
        self.files = files
        self.images = images
        self.out = out
        self.max_items = max_items
        self.batch_size = batch_size
        self.sharded = sharded
        self.json_path = out / "logs" / "eval.json"
        self.results: dict[str, Any] = _read_json(self.json_path)

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        if self.files and self.sharded:
            logger.warning("held-out evaluation skipped: the model is sharded across processes")
        elif self.files and state.is_world_process_zero:
            epoch = max(1, math.ceil((state.epoch or 0) - 1e-6))  # a cut-short last one too
            started = time.perf_counter()
            scores = evaluate_held_out(
                model,
                self.processor,
                self.family,
                self.files,
                self.images,
                self.out / "eval" / f"epoch-{epoch}",
                max_items=self.max_items,
                batch_size=self.batch_size,
                card=self.card,
            )
            self._record(epoch, state.global_step, scores)
            logger.info(
                "held-out evaluation of epoch %d: %.1f s", epoch, time.perf_counter() - started
            )
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()

    def _record(self, epoch: int, step: int, scores: dict[str, dict[str, Any]]) -> None:
        self.results[f"epoch {epoch}"] = {"step": step, **scores}
        self.json_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.json_path, json.dumps(self.results, indent=2), mode=0o666)
        for name, result in scores.items():
            row = {"epoch": epoch, "step": step, "file": name, **result}
            _append_row(self.out / "logs" / "eval.csv", EVAL_COLUMNS, row)


# -- the loss curve -------------------------------------------------------------------------

_SIZE_PX = (800, 420)


def plot_loss(csv_path: Path, png_path: Path) -> Path | None:
    """The training loss against the step as a PNG; None when there is no row."""
    points = [
        (float(r["step"]), float(r["loss"]))
        for r in _read_rows(csv_path)
        if r.get("loss") not in (None, "") and math.isfinite(float(r["loss"]))
    ]
    if not points:
        return None
    steps = [s for s, _ in points]
    losses = [v for _, v in points]
    figure = new_figure(_SIZE_PX)
    axes = figure.add_subplot()
    # a marker too, so a run with a single logged step still shows its point
    axes.plot(steps, losses, color="#4678be", linewidth=2, marker="." if len(points) < 50 else "")
    axes.set_xlim(min(steps), max(max(steps), min(steps) + 1))
    axes.set_ylim(min(0.0, min(losses)), max(losses) * 1.05 or 1.0)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title("training loss")
    axes.grid(True, color="#e1e1e1")
    figure.tight_layout()
    return save_png(figure, png_path)


# -- small file helpers ---------------------------------------------------------------------


def _read_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def _write_rows(path: Path, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, text.getvalue(), mode=0o666)


def _append_row(path: Path, columns: tuple[str, ...], row: dict[str, Any]) -> None:
    new = not path.is_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, columns, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
