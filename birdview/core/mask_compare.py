"""Teaching: a produced mask against the reference label of the same structure (the bundled
label map, or any label map open on the study) — Dice and IoU in 3D and per slice — and, on
one slice, the model's box against the mask's and the reference's bounding boxes.

Plain inputs: a boolean mask on the study's grid, its name, and a `LabelMap` of the same
study. The reference label is found by name (`labels.names_match`); a mask without a matching
name ("segmented") is compared with the label it overlaps most, and the result says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from birdview.core.box import Box
from birdview.core.geometry import Plane
from birdview.core.labels import LabelClass, LabelMap, box_iou
from birdview.core.masks import mask_bbox

__all__ = [
    "BoxAgreement",
    "Comparison",
    "Overlap",
    "box_agreement",
    "compare_mask",
    "dice",
    "iou",
    "overlap",
    "reference_label",
    "slice_of",
]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """2|A∩B| / (|A| + |B|); NaN when both are empty (nothing to agree on)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    total = int(np.count_nonzero(a)) + int(np.count_nonzero(b))
    return 2.0 * int(np.count_nonzero(a & b)) / total if total else math.nan


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """|A∩B| / |A∪B|; NaN when both are empty."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    union = int(np.count_nonzero(a | b))
    return int(np.count_nonzero(a & b)) / union if union else math.nan


@dataclass(frozen=True)
class Overlap:
    """Dice and IoU of a mask and a reference over some voxels (a volume or a slice)."""

    dice: float
    iou: float
    mask_voxels: int
    reference_voxels: int


def overlap(mask: np.ndarray, reference: np.ndarray) -> Overlap:
    mask, reference = np.asarray(mask, dtype=bool), np.asarray(reference, dtype=bool)
    return Overlap(
        dice(mask, reference),
        iou(mask, reference),
        int(np.count_nonzero(mask)),
        int(np.count_nonzero(reference)),
    )


def slice_of(array: np.ndarray, plane: Plane | str, index: int) -> np.ndarray:
    """Slice ``index`` of ``plane`` of a (slices, rows, cols) array, shown as
    `geometry.extract_slice` shows it (the inverse of `masks.put_slice`)."""
    plane = Plane(plane)
    if plane is Plane.AXIAL:
        return array[int(index)]
    if plane is Plane.CORONAL:  # head up: k reversed
        return array[::-1, int(index), :]
    return array[::-1, :, int(index)]


@dataclass(frozen=True)
class Comparison:
    """A mask against its reference label.

    Attributes:
        label: the reference label it was compared with.
        matched_by: "name" (the names match) or "overlap" (the label it overlaps most).
        volume: Dice/IoU over the whole volume.
        slices: (axial slice index, overlap) for every axial slice where either has voxels.
    """

    label: LabelClass
    matched_by: str
    volume: Overlap
    slices: tuple[tuple[int, Overlap], ...]

    def on_slice(self, plane: Plane | str, index: int, mask: np.ndarray, labels: LabelMap):
        """Dice/IoU on one slice of any plane (the axial ones are already in ``slices``)."""
        reference = np.asarray(labels.volume.voxels) == self.label.value
        return overlap(slice_of(np.asarray(mask), plane, index), slice_of(reference, plane, index))


def reference_label(mask: np.ndarray, name: str, labels: LabelMap) -> tuple[LabelClass, str] | None:
    """(the label to compare ``mask`` with, "name" or "overlap"), or None when the label map
    has neither a label of that name nor one the mask touches."""
    found = labels.find(name) if name else None
    if found is not None:
        return found, "name"
    values = np.asarray(labels.volume.voxels)[np.asarray(mask, dtype=bool)]
    values = values[values > 0]
    if values.size == 0:
        return None
    counts = np.bincount(values.astype(np.int64))
    found = labels.by_value(int(np.argmax(counts)))
    return (found, "overlap") if found is not None else None


def compare_mask(
    mask: np.ndarray, name: str, labels: LabelMap, study_identity: str
) -> Comparison | None:
    """Dice and IoU of ``mask`` against its reference label in 3D and per axial slice; None
    when there is no reference for it (see `reference_label`).

    Raises:
        ValueError: the mask and the label map are of different studies or grids.
    """
    mask = np.asarray(mask, dtype=bool)
    if labels.study_identity and labels.study_identity != study_identity:
        raise ValueError(
            f"Unable to compare the mask {name!r} with {labels.source!r} as they belong to "
            "different studies"
        )
    if mask.shape != labels.volume.shape:
        raise ValueError(
            f"Unable to compare the mask {name!r} with {labels.source!r}: its shape "
            f"{mask.shape!r} is not the labels' {labels.volume.shape!r}"
        )
    found = reference_label(mask, name, labels)
    if found is None:
        return None
    label, matched_by = found
    reference = np.asarray(labels.volume.voxels) == label.value
    held = np.flatnonzero((mask | reference).reshape(mask.shape[0], -1).any(axis=1))
    per_slice = tuple((int(k), overlap(mask[k], reference[k])) for k in held)
    return Comparison(label, matched_by, overlap(mask, reference), per_slice)


# -- boxes on one slice ---------------------------------------------------------------------


@dataclass(frozen=True)
class BoxAgreement:
    """The model's box, the mask's and the reference's bounding boxes on one slice, and the
    IoU of each pair (NaN where a box is missing)."""

    model: Box | None
    mask: Box | None
    reference: Box | None

    def iou(self, a: str, b: str) -> float:
        first, second = getattr(self, a), getattr(self, b)
        if first is None or second is None:
            return math.nan
        return box_iou(first, second)


def box_agreement(
    model: Box | None, mask2d: np.ndarray, reference2d: np.ndarray, plane: Plane, index: int
) -> BoxAgreement:
    """The three boxes on slice ``index`` of ``plane`` (2D masks as the slice shows them)."""
    return BoxAgreement(
        model
        if model is not None and model.plane is plane and model.slice_index == index
        else None,
        _box(mask2d, plane, index, "mask"),
        _box(reference2d, plane, index, "reference"),
    )


def _box(mask2d: np.ndarray, plane: Plane, index: int, label: str) -> Box | None:
    edges = mask_bbox(mask2d)
    return Box(plane, index, *edges, label=label) if edges is not None else None
