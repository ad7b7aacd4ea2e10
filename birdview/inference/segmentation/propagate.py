"""Carrying a mask through a range of slices with any engine.

- An engine with memory (``video``) tracks from the prompted slice forward, then backward.
- Any other engine is prompted on each next slice with the box around the mask before it
  ("chain"); where a mask comes out empty the structure has ended, and the slices beyond
  it in that direction are empty without running the model.
- Given one box per slice (a volume sweep's answers), each slice is segmented on its own
  ("boxes"); several boxes on one slice give the union of their masks.
- Given text (a text-prompted engine), every slice is segmented with it ("text").

Every slice of the range is emitted exactly once, as soon as it is known.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from birdview.core.box import Box
from birdview.core.masks import mask_bbox
from birdview.inference.segmentation._base import SliceMask

__all__ = ["propagate"]

Emit = Callable[[int, SliceMask], None]


def propagate(
    engine: Any,
    render: Callable[[int], np.ndarray],
    *,
    first: int,
    last: int,
    start: int,
    box: tuple[float, float, float, float] | None,
    mask: np.ndarray | None,
    boxes: Sequence[Box],
    emit: Emit,
    cancel: Callable[[], bool],
    text: str = "",
    min_score: float = 0.5,
) -> str:
    """Emit (slice, mask) for every slice in ``first``..``last``; returns the method used
    ("text", "boxes", "video" or "chain")."""
    if text:
        for s in range(first, last + 1):
            if cancel():
                break
            emit(s, engine.segment_text(render(s), text, min_score))
        return "text"
    if boxes:
        _each_box(engine, render, first, last, boxes, emit, cancel)
        return "boxes"
    if getattr(engine, "video", False):
        frames = [render(s) for s in range(first, last + 1)]
        engine.track(
            frames,
            start - first,
            box=box,
            mask=mask,
            emit=lambda i, found: emit(first + i, found),
            cancel=cancel,
        )
        return "video"
    _chain(engine, render, first, last, start, box, mask, emit, cancel)
    return "chain"


def _each_box(engine, render, first, last, boxes, emit, cancel) -> None:
    by_slice: dict[int, list[Box]] = {}
    for b in boxes:
        by_slice.setdefault(b.slice_index, []).append(b)
    for s in range(first, last + 1):
        if cancel():
            return
        image = render(s)
        union = np.zeros(image.shape[:2], bool)
        scores = []
        for b in by_slice.get(s, ()):
            found = engine.segment(image, b.edges_px)
            union |= found.mask
            if found.score is not None:
                scores.append(found.score)
        emit(s, SliceMask(union, max(scores) if scores else None))


def _chain(engine, render, first, last, start, box, mask, emit, cancel) -> None:
    seed = SliceMask(np.asarray(mask, bool), None) if mask is not None else None
    if seed is None:
        seed = engine.segment(render(start), box)
    emit(start, seed)
    for step in (1, -1):
        previous = seed.mask
        s = start + step
        while first <= s <= last:
            if cancel():
                return
            around = mask_bbox(previous)
            if around is None:
                found = SliceMask(np.zeros_like(previous), None)
            else:
                found = engine.segment(render(s), around)
            emit(s, found)
            previous = found.mask
            s += step
