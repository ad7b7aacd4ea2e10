"""Per-modality scores of a prediction file, and their means, the way BiRD reports them.

Each metric is computed per modality (the image file name up to its first underscore). The
reported number, ``mean``, is the plain mean over all 8 modalities of `MODALITIES`, where a
modality without items counts as 0, exactly as the authors compute it; ``mean_present`` is
the mean over the modalities that have items, for files that cover only some. A modality
outside the 8 is listed on its own and left out of both means (with a warning).

Values are fractions (0–1; CIDEr may exceed 1); `format_scores` shows them ×100, as the paper
does. A modality without items has the value None in ``per_modality``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from trainer._json_stream import open_text
from trainer.evaluation._captions import CAPTION_METRICS, caption_scores
from trainer.evaluation._rules import clean_response, roc_correct, vg_hits
from trainer.medgrit import MODALITIES, modality_of

__all__ = ["TASKS", "Scores", "evaluate", "evaluate_file", "format_scores", "read_predictions"]

logger = logging.getLogger(__name__)

TASKS = ("vg", "roc", "rc", "mia")
_HEADLINE = {"vg": "Recall@0.5", "roc": "accuracy", "rc": "SPICE", "mia": "mBMR (BLEU-1)"}
_MBMR = ("mBMR (BLEU-1)", "mBMR (BLEU-4)")

Value = float | None


@dataclass(frozen=True)
class Scores:
    """A task's scores.

    Attributes:
        task: "vg", "roc", "rc" or "mia".
        metric: the headline metric: Recall@0.5, accuracy, SPICE (CIDEr when SPICE is
            unavailable), mBMR (BLEU-1).
        per_modality: modality → value (VG, ROC) or metric → value (RC, MIA); None when the
            modality has no items.
        mean: the plain mean over the 8 modalities, absent ones counting 0 (BiRD's number).
        mean_present: the mean over the modalities with items (None when there are none).
        counts: items scored per modality (VG: items with a reference box).
        boxes: VG only: reference boxes per modality (the recall's denominator).
        unavailable: metric → why it could not be computed (SPICE offline).
    """

    task: str
    metric: str
    per_modality: dict[str, Any]
    mean: Any
    mean_present: Any
    counts: dict[str, int]
    boxes: dict[str, int] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)

    @property
    def headline(self) -> Value:
        """The number BiRD reports: the mean of the headline metric."""
        return self.mean[self.metric] if isinstance(self.mean, dict) else self.mean

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "task": self.task,
            "metric": self.metric,
            "per_modality": self.per_modality,
            "mean": self.mean,
            "mean_present": self.mean_present,
            "counts": self.counts,
        }
        if self.boxes:
            data["boxes"] = self.boxes
        if self.unavailable:
            data["unavailable"] = self.unavailable
        return data


def read_predictions(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a prediction JSONL file (`trainer.predict` writes them).

    Raises:
        FileNotFoundError: there is no such file, or it is a folder.
        ValueError: the file is not UTF-8, or a line is not a JSON object with "annotation",
            "response" and "image" (or "id").
    """
    with open_text(path) as stream:
        try:
            return [_read_row(line, path, n) for n, line in enumerate(stream, 1) if line.strip()]
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"Unable to read predictions from '{path}' as it is not UTF-8 text"
            ) from exc


def _read_row(line: str, path: Any, number: int) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"Unable to read predictions from '{path}' as line {number} is not JSON ({exc.msg})"
        ) from exc
    except RecursionError as exc:
        raise ValueError(
            f"Unable to read predictions from '{path}' as line {number} nests too deeply"
        ) from exc
    _check_row(row, path, number)
    return row


def _check_row(row: Any, path: Any, number: int) -> None:
    if not isinstance(row, dict):
        raise ValueError(
            f"Unable to read predictions from '{path}' as line {number} is not a JSON object"
        )
    missing = [k for k in ("annotation", "response") if not isinstance(row.get(k), str)]
    if not isinstance(row.get("image") or row.get("id"), str):
        missing.append("image")
    if missing:
        raise ValueError(
            f"Unable to read predictions from '{path}' as line {number} lacks "
            f"{', '.join(repr(k) for k in missing)}"
        )


def evaluate_file(path: str | os.PathLike, task: str, *, spice: bool = True) -> Scores:
    """`evaluate` on the rows of a prediction file."""
    return evaluate(read_predictions(path), task, spice=spice)


def evaluate(rows: Iterable[dict[str, Any]], task: str, *, spice: bool = True) -> Scores:
    """Score prediction rows ({"image", "annotation", "response"}) for ``task``.

    Responses are cleaned with `clean_response` first. ``spice=False`` skips SPICE for RC.

    Raises:
        ValueError: ``task`` is not one of `TASKS`.
        ImportError, RuntimeError: RC/MIA need pycocoevalcap and Java.
    """
    task = str(task).lower()
    if task not in TASKS:
        raise ValueError(f"Unable to evaluate as task {task!r} is not one of {list(TASKS)}")
    groups: dict[str, list[int]] = {m: [] for m in MODALITIES}
    references: list[str] = []
    responses: list[str] = []
    for row in rows:
        modality = modality_of(row.get("image") or row.get("id") or "")
        groups.setdefault(modality, []).append(len(references))
        references.append(str(row["annotation"]))
        responses.append(clean_response(row["response"]))
    others = [m for m in groups if m not in MODALITIES]
    if others:
        logger.warning("modalities outside the 8 are left out of the means: %s", others)
    if task == "vg":
        return _grounding(references, responses, groups)
    if task == "roc":
        return _classification(references, responses, groups)
    return _captions(task, references, responses, groups, spice=spice and task == "rc")


def _grounding(references, responses, groups) -> Scores:
    per_modality: dict[str, Value] = {}
    counts: dict[str, int] = {}
    boxes: dict[str, int] = {}
    for modality, positions in groups.items():
        hits = total = items = 0
        for n in positions:
            item_hits, item_boxes = vg_hits(references[n], responses[n])
            if item_boxes == 0:
                continue  # no reference box: skipped entirely
            hits, total, items = hits + item_hits, total + item_boxes, items + 1
        per_modality[modality] = hits / total if total else None
        counts[modality], boxes[modality] = items, total
    mean, present = _means(per_modality)
    return Scores("vg", _HEADLINE["vg"], per_modality, mean, present, counts, boxes)


def _classification(references, responses, groups) -> Scores:
    per_modality: dict[str, Value] = {}
    counts: dict[str, int] = {}
    for modality, positions in groups.items():
        correct = sum(1 for n in positions if roc_correct(references[n], responses[n]))
        per_modality[modality] = correct / len(positions) if positions else None
        counts[modality] = len(positions)
    mean, present = _means(per_modality)
    return Scores("roc", _HEADLINE["roc"], per_modality, mean, present, counts)


def _captions(task, references, responses, groups, *, spice: bool) -> Scores:
    found, reason = caption_scores(references, responses, groups, spice=spice)
    metrics = list(CAPTION_METRICS) if task == "rc" else [*CAPTION_METRICS[:-1], *_MBMR]
    unavailable = {"SPICE": reason} if reason else {}
    if task == "rc" and not spice and not reason:
        unavailable = {"SPICE": "not asked for"}
    per_modality: dict[str, dict[str, Value] | None] = {}
    for modality in groups:
        values = found.get(modality)
        if values is not None and task == "mia":
            rest = values["METEOR"] + values["ROUGE-L"]
            values = {**values, _MBMR[0]: (values["BLEU-1"] + rest) / 3}
            values[_MBMR[1]] = (values["BLEU-4"] + rest) / 3
        per_modality[modality] = {k: values[k] for k in metrics} if values is not None else None
    mean: dict[str, Value] = {}
    present: dict[str, Value] = {}
    for metric in metrics:
        column = {m: (v[metric] if v is not None else None) for m, v in per_modality.items()}
        if metric in unavailable:
            mean[metric] = present[metric] = None
        else:
            mean[metric], present[metric] = _means(column)
    counts = {m: len(p) for m, p in groups.items()}
    headline = _HEADLINE[task] if _HEADLINE[task] not in unavailable else "CIDEr"
    return Scores(task, headline, per_modality, mean, present, counts, unavailable=unavailable)


def _means(per_modality: dict[str, Value]) -> tuple[Value, Value]:
    """(mean over the 8 with absent as 0, mean over those present)."""
    values = [per_modality.get(m) for m in MODALITIES]
    present = [v for v in values if v is not None]
    mean = sum(present) / len(MODALITIES)
    return mean, (sum(present) / len(present) if present else None)


def format_scores(scores: Scores) -> str:
    """A table, values ×100 (as the paper prints them), absent modalities as "-"; each mean's
    label gives the number of modalities it is taken over."""
    if isinstance(scores.mean, dict):
        columns = list(scores.mean)
    else:
        columns = [scores.metric]
    width = max(12, *(len(c) + 2 for c in columns))
    # The labels say how many modalities each mean is taken over: all of MODALITIES (absent
    # ones as 0) and those with items, so a file covering a few is not read as covering all.
    present = sum(1 for m in MODALITIES if scores.per_modality.get(m) is not None)
    mean_label = f"mean ({len(MODALITIES)})"
    present_label = f"mean_present ({present})"
    label = max(12, *(len(k) + 1 for k in (*scores.per_modality, mean_label, present_label)))
    lines = [f"{scores.task.upper()} ({scores.metric}, ×100)"]
    lines.append(f"{'modality':<{label}}{'items':>7}" + "".join(f"{c:>{width}}" for c in columns))

    def cells(values: Any) -> str:
        if not isinstance(values, dict):
            values = {scores.metric: values}
        return "".join(f"{_percent(values.get(c)):>{width}}" for c in columns)

    for modality, values in scores.per_modality.items():
        row = values if values is not None else {}
        lines.append(f"{modality:<{label}}{scores.counts.get(modality, 0):>7}" + cells(row))
    total = sum(scores.counts.values())
    lines.append(f"{mean_label:<{label}}{total:>7}" + cells(scores.mean))
    lines.append(f"{present_label:<{label}}{'':>7}" + cells(scores.mean_present))
    for metric, reason in scores.unavailable.items():
        lines.append(f"{metric} unavailable: {reason}")
    return "\n".join(lines)


def _percent(value: Value) -> str:
    return "-" if value is None else f"{100 * value:.2f}"
