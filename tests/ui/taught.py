"""A tiny qwen2_vl checkpoint taught known answers about the bundled sample CT.

Built locally (no downloads) by `trainer.tiny.build_tiny` and `finetune_answers`, so the
viewer's tests can check that boxes land on expected pixels and that a volume sweep finds the
expected slices. The images it learns are made exactly as the app makes them: the DICOM series
in resources/samples/totalseg_ct read by `birdview.core.io` (scan, load), brought to canonical
order, and rendered by `render_for_model` on the volume's intensity range. The truth comes from
TotalSegmentator's label map of the same series (same grid after `to_canonical`, see
tests/core/test_alignment.py).

On the axial plane it answers, single-turn:

* middle slice (``liver_slice``), `grounding_question("liver")` → the liver's box on that slice;
* same slice, the ROC question for that box (``Engine.ask(image, "", region=box,
  task="RO")``) → "Liver";
* every slice, `grounding_question("colon")` → one fixed box (the colon's extent over the whole
  volume) on the slices with colon, "There is no colon in this image." on the others.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from birdview.core.prompts import grounding_question
from tests.conftest import REPO, shared
from trainer.tiny import TinySpec

__all__ = [
    "COLON_QUESTION",
    "FAMILY",
    "LIVER_QUESTION",
    "NO_COLON_ANSWER",
    "ROC_ANSWER",
    "SAMPLE_CT",
    "SPEC",
    "TaughtModel",
    "load_sample_ct",
    "teach_viewer_model",
]

logger = logging.getLogger(__name__)

FAMILY = "qwen2_vl"
SAMPLE_CT = REPO / "resources" / "samples" / "totalseg_ct"
LIVER_LABEL = 5  # classes.json, ct_total
COLON_LABEL = 20
ROC_ANSWER = "Liver"
NO_COLON_ANSWER = "There is no colon in this image."
LIVER_QUESTION = grounding_question("liver")
COLON_QUESTION = grounding_question("colon")
# The default tiny model, but its processor shrinks the 512 × 512 slices to 112 × 112 (16
# image tokens, not 81): a training step takes a third of the time, and every slice is still
# told apart.
SPEC = TinySpec(max_pixels=112 * 112)


@dataclass(frozen=True)
class TaughtModel:
    """Where the taught checkpoint is and the answers it gives (canonical axial slices, pixel
    edges of the 512 × 512 slice)."""

    model_dir: Path
    family: str
    liver_slice: int
    liver_box_px: tuple[float, float, float, float]
    colon_slices: tuple[int, ...]
    colon_box_px: tuple[float, float, float, float]


def load_sample_ct():
    """The sample CT as the viewer opens it: `io.scan` → `io.load` → `to_canonical`."""
    from birdview.core import geometry, io

    (entry,) = io.scan(SAMPLE_CT).entries
    return geometry.to_canonical(io.load(entry))


def _label_map() -> np.ndarray:
    from birdview.core import geometry, io

    (entry,) = io.scan(shared("totalseg", "example_seg_dicom.nii.gz")).entries
    return np.asarray(geometry.to_canonical(io.load(entry)).voxels)


def _extent(mask: np.ndarray) -> tuple[float, float, float, float]:
    """Pixel edges (x1, y1, x2, y2) around the true pixels of a (rows, cols) mask."""
    rows, cols = np.nonzero(mask)
    return (float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1))


def teach_viewer_model(out_dir: Path, *, base_dir: Path | None = None) -> TaughtModel:
    """Teach the answers above to a tiny qwen2_vl checkpoint and save it in ``out_dir``.

    ``base_dir`` is a tiny qwen2_vl checkpoint to start from; by default one is built with
    `build_tiny(seed=0)` in a temporary folder.

    Raises:
        AssertionError: the answers were not all learnt.
    """
    from birdview.core import families
    from birdview.core.box import Box
    from birdview.core.geometry import Plane, slice_count
    from birdview.core.model_input import render_for_model, volume_intensity_range
    from birdview.core.prompts import Task, question_for
    from birdview.inference.engine import model_size_px
    from tests.inference.finetune import Example, finetune_answers
    from trainer.tiny import build_tiny

    out_dir = Path(out_dir)
    volume = load_sample_ct()
    labels = _label_map()
    if labels.shape != volume.shape:
        raise AssertionError(f"label map {labels.shape} does not match the CT {volume.shape}")
    total = slice_count(volume, Plane.AXIAL)
    mid = total // 2
    intensity_range = volume_intensity_range(volume)
    images = [
        render_for_model(volume, Plane.AXIAL, k, intensity_range=intensity_range)
        for k in range(total)
    ]
    height, width = images[mid].shape[:2]
    liver_px = _extent(labels[mid] == LIVER_LABEL)
    colon = labels == COLON_LABEL
    colon_slices = tuple(int(k) for k in range(total) if colon[k].any())
    colon_px = _extent(colon.any(axis=0))

    family = families.get(FAMILY)
    codec = family.codec
    with tempfile.TemporaryDirectory(prefix="tiny_base_") as scratch:
        if base_dir is None:
            base_dir = build_tiny(FAMILY, Path(scratch) / FAMILY, seed=0, spec=SPEC)
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(base_dir, local_files_only=True)
        resized = model_size_px(processor, width, height, family)
        liver_box = Box(Plane.AXIAL, mid, *liver_px, label="liver")
        liver_answer = codec.encode([liver_box], (width, height), model_size_px=resized)
        roc_question = question_for(
            Task.ROC,
            codec=codec,
            box=liver_box,
            image_size_px=(width, height),
            model_size_px=resized,
        )
        examples = [
            Example(images[mid], grounding_question("liver"), liver_answer),
            Example(images[mid], roc_question, ROC_ANSWER),
        ]
        for k in range(total):
            if k in colon_slices:
                box = Box(Plane.AXIAL, k, *colon_px, label="colon")
                answer = codec.encode([box], (width, height), model_size_px=resized)
            else:
                answer = NO_COLON_ANSWER
            examples.append(Example(images[k], grounding_question("colon"), answer))
        report = finetune_answers(base_dir, out_dir, examples)
    logger.info(
        "taught %d answers in %d steps, %.1f s (smallest margin %.2f)",
        len(examples),
        report.steps,
        report.seconds,
        report.margin,
    )
    return TaughtModel(out_dir, FAMILY, mid, liver_px, colon_slices, colon_px)
