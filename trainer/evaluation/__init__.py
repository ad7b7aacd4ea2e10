"""BiRD's evaluation of Med-GRIT predictions, metric for metric (the evaluation scripts of
github.com/ShawnHuang497/BiRD, tests/models/BiRD/eval_*_score_modality.py).

::

    scores = evaluate_file("pred_VG.jsonl", "vg")
    scores.mean            # BiRD's number: plain mean over the 8 modalities, absent = 0
    scores.mean_present    # mean over the modalities the file has
    print(format_scores(scores))

Tasks: ``vg`` (Recall@0.5), ``roc`` (accuracy), ``rc`` (BLEU-1..4, METEOR, ROUGE-L, CIDEr,
SPICE) and ``mia`` (the same without SPICE, plus mBMR with BLEU-1 and with BLEU-4). The
scoring rules are in `trainer.evaluation._rules`, re-exported here.
"""

from trainer.evaluation._captions import CAPTION_METRICS, spice_unavailable_reason
from trainer.evaluation._plot import plot_scores
from trainer.evaluation._rules import (
    IOU_THRESHOLD,
    box_values,
    clean_response,
    iou,
    predicted_boxes,
    reference_boxes,
    roc_correct,
    vg_hits,
)
from trainer.evaluation._scores import (
    TASKS,
    Scores,
    evaluate,
    evaluate_file,
    format_scores,
    read_predictions,
)

__all__ = [
    "CAPTION_METRICS",
    "IOU_THRESHOLD",
    "TASKS",
    "Scores",
    "box_values",
    "clean_response",
    "evaluate",
    "evaluate_file",
    "format_scores",
    "iou",
    "plot_scores",
    "predicted_boxes",
    "read_predictions",
    "reference_boxes",
    "roc_correct",
    "spice_unavailable_reason",
    "vg_hits",
]
