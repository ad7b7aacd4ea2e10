"""Where a box's name goes so that it crosses no other box and no other name: the first of
above-left, below-left, above-right, below-right and inside-top-left that stays in the view
and touches nothing already there; when none is free, the one that covers least."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QRectF, QSizeF

__all__ = ["place_label"]

_GAP = 2.0


def place_label(
    box: QRectF, size: QSizeF, others: Sequence[QRectF], taken: Sequence[QRectF], area: QRectF
) -> QRectF:
    """The rect (viewport pixels) for a label of ``size`` on ``box``; ``others`` are the other
    boxes, ``taken`` the labels placed already."""
    w, h = size.width(), size.height()
    candidates = [
        QRectF(box.left(), box.top() - h - _GAP, w, h),
        QRectF(box.left(), box.bottom() + _GAP, w, h),
        QRectF(box.right() - w, box.top() - h - _GAP, w, h),
        QRectF(box.right() - w, box.bottom() + _GAP, w, h),
        QRectF(box.left() + _GAP + 2, box.top() + _GAP + 2, w, h),
    ]
    obstacles = [*others, *taken]
    inside = [c for c in candidates if area.contains(c)] or candidates[:1]
    for candidate in inside:
        if not any(candidate.intersects(o) for o in obstacles):
            return candidate
    return min(inside, key=lambda c: sum(_overlap(c, o) for o in obstacles))


def _overlap(a: QRectF, b: QRectF) -> float:
    common = a.intersected(b)
    return common.width() * common.height()
