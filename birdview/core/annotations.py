"""The user's own annotations: arrows and text notes on a slice.

They are `Measurement`s of the kinds `ANNOTATION_KINDS` ("arrow": tail then tip; "text": one
anchor point, the text in ``label``), so they share the measurement set's editing, one undo
history with the measurements, the per-study file beside the session
(`birdview.core.measure_store`) and the exports: drawn in the annotated PNG, and in the DICOM SR
as a TID 1410 group whose region is the arrow (a POLYLINE) or the note's anchor (a POINT),
with the text as a TEXT item (`annotation_groups`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from birdview.core.measure import ANNOTATION_KINDS, Measurement

__all__ = ["ANNOTATION_KINDS", "arrow", "arrow_head_points", "is_annotation", "text_note"]

_HEAD_ANGLE = math.radians(25)


def arrow(plane, slice_index: int, tail, tip, note: str = "") -> Measurement:
    """An arrow from ``tail`` to ``tip`` (image pixel edges) with an optional note."""
    return Measurement("arrow", plane, slice_index, (tail, tip), note)


def text_note(plane, slice_index: int, at, text: str) -> Measurement:
    """A text note whose text starts at ``at``.

    Raises:
        ValueError: the text is empty.
    """
    if not str(text).strip():
        raise ValueError("Unable to make a text note without text")
    return Measurement("text", plane, slice_index, (at,), str(text).strip())


def is_annotation(item: Measurement) -> bool:
    return item.kind in ANNOTATION_KINDS


def arrow_head_points(
    tail: Sequence[float], tip: Sequence[float], size: float
) -> list[tuple[float, float]]:
    """The three corners of an arrow head of ``size`` at ``tip`` (for Pillow drawings)."""
    angle = math.atan2(tip[1] - tail[1], tip[0] - tail[0])
    corners = [(float(tip[0]), float(tip[1]))]
    for side in (-1, 1):
        a = angle + math.pi + side * _HEAD_ANGLE
        corners.append((tip[0] + math.cos(a) * size, tip[1] + math.sin(a) * size))
    return corners
