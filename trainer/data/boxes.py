"""Boxes from masks: one per connected component, and their union, in pixel edges.

A mask is one object as the source gives it: a SA-Med2D instance file (``hip_left_000``) or one
label of a label map. Each of its 8-connected components of at least ``min_px`` pixels gets a
box (SA-Med2D split its masks the same way, so a box is what Med-GRIT calls one object); the
union of those boxes stands for the whole mask when a question refers to it. Instances are
never merged: ``hip_left_000`` and ``hip_left_001`` stay two masks with their own boxes.

Boxes are pixel *edges* (`birdview.core.box.Box` convention): a component covering columns 3..7
spans x 3 to 8. The 0–1000 grid text is written by the "medgrit" codec (`text_boxes`), never
here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from birdview.core.box import Box
from birdview.core.box_codecs import MEDGRIT
from birdview.core.geometry import Plane

__all__ = [
    "PixelBox",
    "Region",
    "components",
    "region_of",
    "regions_of",
    "text_boxes",
    "text_region",
]

_CODEC = MEDGRIT


@dataclass(frozen=True)
class PixelBox:
    """Pixel edges: x1 < x2, y1 < y2, integers."""

    x1: int
    y1: int
    x2: int
    y2: int

    @property
    def area(self) -> int:
        return (self.x2 - self.x1) * (self.y2 - self.y1)

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2)

    def overlap(self, other: PixelBox) -> int:
        """Pixels shared with ``other``."""
        width = min(self.x2, other.x2) - max(self.x1, other.x1)
        height = min(self.y2, other.y2) - max(self.y1, other.y1)
        return max(width, 0) * max(height, 0)


@dataclass(frozen=True)
class Region:
    """One mask's boxes.

    Attributes:
        label: the label as the source spells it.
        instance: which instance of the label (SA-Med2D's _000, _001...), 0 for label maps.
        components: one box per kept component, ordered left to right, then top to bottom.
        union: the box around all of them.
        pixels: foreground pixels in the kept components.
    """

    label: str
    instance: int
    components: tuple[PixelBox, ...]
    union: PixelBox
    pixels: int


def components(mask: np.ndarray, min_px: int) -> list[tuple[PixelBox, int]]:
    """(box, pixel count) of every 8-connected component of a boolean ``mask`` with at least
    ``min_px`` pixels, ordered by (x1, y1)."""
    return _components_by_value(np.asarray(mask, dtype=np.uint8), min_px).get(1, [])


def regions_of(masks: Sequence, min_px: int) -> list[Region]:
    """The `Region` of each mask (objects with ``label``, ``instance`` and boolean
    ``pixels``) that has a component of at least ``min_px`` pixels, in the masks' order.

    Masks that do not overlap (the labels of a label map, the instances of a label) are
    labelled in one pass; overlapping ones (BiomedParse's "kidney" and "left kidney") one by
    one, so that each keeps all its pixels.
    """
    if not masks:
        return []
    coverage = np.zeros(masks[0].pixels.shape, dtype=np.uint16)
    for mask in masks:
        coverage += mask.pixels
    if coverage.max() <= 1:
        labels = np.zeros(coverage.shape, dtype=np.int32)
        for value, mask in enumerate(masks, start=1):
            labels[mask.pixels] = value
        found = _components_by_value(labels, min_px)
        per_mask = [found.get(value, []) for value in range(1, len(masks) + 1)]
    else:
        per_mask = [components(mask.pixels, min_px) for mask in masks]
    regions = (_region(m.label, m.instance, c) for m, c in zip(masks, per_mask, strict=True))
    return [r for r in regions if r is not None]


def region_of(label: str, instance: int, mask: np.ndarray, min_px: int) -> Region | None:
    """The boxes of one mask; None when no component reaches ``min_px`` pixels."""
    return _region(label, instance, components(mask, min_px))


def _region(label: str, instance: int, found: list[tuple[PixelBox, int]]) -> Region | None:
    if not found:
        return None
    boxes = tuple(box for box, _ in found)
    union = PixelBox(
        min(b.x1 for b in boxes),
        min(b.y1 for b in boxes),
        max(b.x2 for b in boxes),
        max(b.y2 for b in boxes),
    )
    return Region(label, instance, boxes, union, sum(count for _, count in found))


def _components_by_value(labels: np.ndarray, min_px: int) -> dict[int, list]:
    """Value → [(box, pixel count)] of the 8-connected components of each non-zero value
    (neighbours join only when their values are equal), ordered by (x1, y1)."""
    import SimpleITK as sitk

    rows, cols = np.nonzero(labels)
    if rows.size == 0:
        return {}
    top, left = int(rows.min()), int(cols.min())
    # Labelled on the objects' own extent: far cheaper than on a whole slice.
    crop = np.ascontiguousarray(labels[top : rows.max() + 1, left : cols.max() + 1], np.int32)
    image = sitk.GetImageFromArray(crop)
    # One pass for all values; each component is uniform, so its mean is its value.
    labelled = sitk.ScalarConnectedComponent(image, 0.0, True)
    stats = sitk.LabelIntensityStatisticsImageFilter()
    stats.Execute(labelled, image)
    found: dict[int, list] = {}
    for component in stats.GetLabels():
        value = int(round(stats.GetMean(component)))
        count = int(stats.GetNumberOfPixels(component))
        if value == 0 or count < min_px:
            continue
        x, y, width, height = stats.GetBoundingBox(component)
        box = PixelBox(left + x, top + y, left + x + width, top + y + height)
        found.setdefault(value, []).append((box, count))
    for boxes in found.values():
        boxes.sort(key=lambda item: (item[0].x1, item[0].y1, item[0].x2, item[0].y2))
    return found


def text_boxes(name: str, boxes: Sequence[PixelBox], size: tuple[int, int]) -> str:
    """``<ref>name</ref><box>(x1,y1),(x2,y2)</box>...`` on the 0–1000 grid of a
    ``size`` = (width, height) image, written by the "medgrit" codec."""
    return _CODEC.encode([_box(b, name) for b in boxes], size)


def text_region(box: PixelBox, size: tuple[int, int]) -> str:
    """``<box>(x1,y1),(x2,y2)</box>`` for a question, without a label."""
    return _CODEC.encode_region(_box(box, ""), size)


def _box(box: PixelBox, label: str) -> Box:
    # The plane and slice do not enter the text; the codec needs a Box all the same.
    return Box(Plane.AXIAL, 0, box.x1, box.y1, box.x2, box.y2, label=label)
