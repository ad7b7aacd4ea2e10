"""How the demo model does on the sample CT, asked the way the app asks: one volume sweep per
structure ("Where is the X located in the image?" on every axial slice, the real `Engine`),
scored against TotalSegmentator's label map of that CT.

Per structure:

* presence accuracy: the share of slices where the model's "there is a box" / "there is none"
  matches the label map (a structure is on a slice when it has a part of at least
  ``MIN_PART_PX`` pixels, the data builder's rule for what it boxes);
* median IoU over the slices that have it, between the box around everything the model drew
  and the box around the structure's parts (0 on a slice where the model drew nothing).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from birdview.core.geometry import to_canonical
from birdview.core.io import load, scan

MIN_PART_PX = 16

Edges = tuple[float, float, float, float]


@dataclass(frozen=True)
class StructureScore:
    """One structure's sweep against the label map."""

    name: str
    slices: int
    present_on: list[int]
    found_on: list[int]
    presence_accuracy: float
    median_iou: float

    def to_dict(self) -> dict:
        return asdict(self)


def canonical_volume(path: Path):
    """The first series at ``path`` as the viewer shows it (canonical orientation)."""
    entry = scan(path).entries[0]
    return to_canonical(load(entry))


def truth_boxes(labels: np.ndarray, value: int) -> list[Edges | None]:
    """Per axial slice, the box around the structure's parts of at least `MIN_PART_PX`
    pixels, or None where it has none."""
    from trainer.data.boxes import components

    boxes: list[Edges | None] = []
    for plane in labels:
        parts = [box for box, _ in components(plane == value, MIN_PART_PX)]
        if not parts:
            boxes.append(None)
            continue
        boxes.append(
            (
                float(min(b.x1 for b in parts)),
                float(min(b.y1 for b in parts)),
                float(max(b.x2 for b in parts)),
                float(max(b.y2 for b in parts)),
            )
        )
    return boxes


def iou(a: Edges, b: Edges) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def enclosing(boxes) -> Edges | None:
    if not boxes:
        return None
    edges = [box.edges_px for box in boxes]
    return (
        min(e[0] for e in edges),
        min(e[1] for e in edges),
        max(e[2] for e in edges),
        max(e[3] for e in edges),
    )


def score_structure(name: str, truth: list[Edges | None], results) -> StructureScore:
    """Compare one sweep (`SliceResult` per slice, in slice order) with the truth boxes."""
    drawn = [enclosing(r.boxes) for r in results]
    agree = sum((t is None) == (d is None) for t, d in zip(truth, drawn, strict=True))
    ious = [iou(t, d) if d is not None else 0.0 for t, d in zip(truth, drawn, strict=True) if t]
    return StructureScore(
        name=name,
        slices=len(truth),
        present_on=[k for k, t in enumerate(truth) if t is not None],
        found_on=[k for k, d in enumerate(drawn) if d is not None],
        presence_accuracy=round(agree / len(truth), 3),
        median_iou=round(statistics.median(ious), 3) if ious else 0.0,
    )


def sweep_scores(
    model_dir: Path, ct: Path, label_file: Path, structures: dict[int, str]
) -> dict[str, StructureScore]:
    """Sweep every structure (label value: readable name) over the CT with the model in
    ``model_dir`` on the CPU, and score each against the label map."""
    from birdview.core.prompts import grounding_question
    from birdview.inference.engine import Engine
    from birdview.inference.loader import load_checkpoint

    volume = canonical_volume(ct)
    labels = np.asarray(canonical_volume(label_file).voxels)
    engine = Engine(load_checkpoint(model_dir, device="cpu", precision="fp32"))
    scores = {}
    for value, name in structures.items():
        results = engine.sweep(volume, grounding_question(name), "axial", batch_size=10)
        scores[name] = score_structure(name, truth_boxes(labels, value), results)
    return scores
