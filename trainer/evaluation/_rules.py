"""BiRD's scoring rules, one small function each (the evaluation scripts of
github.com/ShawnHuang497/BiRD, tests/models/BiRD/eval_*_score_modality.py and regularization.py).

These reproduce the authors' definitions exactly, including their corner cases:

* `clean_response`: ``.<|im_end|>`` cuts the text (a period is put back); every
  ``<|im_end|>`` followed by a newline is deleted; when the text then holds a line between
  two newlines (the first match of ``\\n([^\\n]*)\\n``, which may be an empty line) only that
  line is kept; ``<|endoftext|>`` is deleted; the result is stripped.
* `box_values`: parentheses deleted, split on commas, four floats or nothing.
* `iou`: plain area IoU on the four numbers, no +1; an empty union gives 0.
* `vg_hits`: a reference box is hit when any predicted box has IoU strictly above 0.5;
  predictions are not consumed.
* `roc_correct`: every single-space piece of the lower-cased reference is a substring of the
  lower-cased response.
"""

from __future__ import annotations

import math
import re

__all__ = [
    "IOU_THRESHOLD",
    "box_values",
    "clean_response",
    "iou",
    "predicted_boxes",
    "reference_boxes",
    "roc_correct",
    "vg_hits",
]

IOU_THRESHOLD = 0.5

_BOX_RE = re.compile(r"<box>(.*?)</box>")
_BARE_RE = re.compile(r"\(\d+,\d+\),\(\d+,\d+\)")
_LINE_RE = re.compile(r"\n([^\n]*)\n")

Values = tuple[float, float, float, float]


def clean_response(text: str) -> str:
    """A model's response as BiRD's evaluation reads it (see the module docstring)."""
    text = str(text)
    cut = text.find(".<|im_end|>")
    if cut >= 0:
        text = text[:cut] + "."
    text = text.replace("<|im_end|>\n", "")
    line = _LINE_RE.search(text)
    if line is not None:
        text = line.group(1)
    return text.replace("<|endoftext|>", "").strip()


def reference_boxes(reference: str) -> list[str]:
    """The contents of every ``<box>...</box>`` in a reference answer."""
    return _BOX_RE.findall(str(reference))


def predicted_boxes(response: str) -> list[str]:
    """Box strings of a cleaned response: every ``<box>...</box>``; when there is none,
    every bare ``(int,int),(int,int)``."""
    tagged = _BOX_RE.findall(response)
    return tagged if tagged else _BARE_RE.findall(response)


def box_values(box: str) -> Values | None:
    """Four floats from a box string, parentheses deleted and split on commas; None when it
    does not give exactly four numbers."""
    parts = box.replace("(", "").replace(")", "").split(",")
    if len(parts) != 4:
        return None
    try:
        x1, y1, x2, y2 = (float(p) for p in parts)
    except ValueError:
        return None
    return (x1, y1, x2, y2)


def iou(a: Values | None, b: Values | None) -> float:
    """Area IoU of two (x1, y1, x2, y2) boxes, no +1 on widths; 0 when either is missing,
    the union is empty (zero-area boxes) or the numbers are not finite."""
    if a is None or b is None:
        return 0.0
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    if not (union > 0 and math.isfinite(union) and math.isfinite(inter)):
        return 0.0
    return inter / union


def vg_hits(reference: str, response: str) -> tuple[int, int]:
    """(hits, reference boxes) of one item; ``response`` must already be cleaned."""
    truths = [box_values(b) for b in reference_boxes(reference)]
    guesses = [box_values(b) for b in predicted_boxes(response)]
    hits = sum(1 for t in truths if any(iou(t, g) > IOU_THRESHOLD for g in guesses))
    return hits, len(truths)


def roc_correct(reference: str, response: str) -> bool:
    """Whether a cleaned response names the reference's object (substring rule)."""
    answer = response.lower()
    return all(piece in answer for piece in str(reference).lower().split(" "))
