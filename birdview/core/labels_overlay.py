"""`LabelOverlay`: how the open label map is shown — which labels, how opaque, filled or
outlined — as an evented model the views and the legend observe, and `render_rgba`, the
colouring of one slice of labels (Qt-free, so it is tested without a screen)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from psygnal import evented

from birdview.core.labels import LabelMap

__all__ = ["LabelOverlay", "render_rgba"]


@evented
@dataclass
class LabelOverlay:
    """What label map is open over the study and how it is drawn.

    Attributes:
        label_map: the open label map, or None.
        hidden: label values the user switched off.
        opacity: 0 (invisible) to 1 (opaque) for filled labels; outlines draw at
            ``max(opacity, 0.8)`` so they stay visible over bright tissue.
        outline: draw only each label's border instead of filling it.
        visible: the whole layer on or off.
    """

    label_map: LabelMap | None = None
    hidden: frozenset[int] = frozenset()
    opacity: float = 0.45
    outline: bool = False
    visible: bool = True

    def open(self, label_map: LabelMap | None) -> None:
        """Show ``label_map`` (None: close), every label on."""
        self.hidden = frozenset()
        self.label_map = label_map

    def close(self) -> None:
        self.open(None)

    def set_hidden(self, values) -> None:
        """Switch off exactly ``values`` (label values), every other label on."""
        self.hidden = frozenset(int(v) for v in values)

    def set_shown(self, value: int, shown: bool) -> None:
        value = int(value)
        self.hidden = self.hidden - {value} if shown else self.hidden | {value}

    def set_opacity(self, opacity: float) -> None:
        """Raises: ValueError: ``opacity`` is not within 0..1."""
        opacity = float(opacity)
        if not 0.0 <= opacity <= 1.0:
            raise ValueError(f"Unable to set the label opacity as {opacity!r} is not in 0..1")
        self.opacity = opacity

    def set_outline(self, outline: bool) -> None:
        self.outline = bool(outline)

    def set_visible(self, visible: bool) -> None:
        self.visible = bool(visible)

    def colour_table(self) -> np.ndarray:
        """RGBA per label value (rows up to the largest value), hidden values transparent."""
        label_map = self.label_map
        top = max((c.value for c in label_map.classes), default=0) if label_map else 0
        table = np.zeros((top + 1, 4), dtype=np.uint8)
        if label_map is None:
            return table
        alpha = round(255 * (max(self.opacity, 0.8) if self.outline else self.opacity))
        for item in label_map.classes:
            if item.value not in self.hidden:
                table[item.value] = (*item.colour, alpha)
        return table


def render_rgba(labels: np.ndarray, overlay: LabelOverlay) -> np.ndarray:
    """The (rows, cols, 4) RGBA image of one slice of labels as ``overlay`` draws it."""
    table = overlay.colour_table()
    if not overlay.visible or overlay.label_map is None:
        return np.zeros((*labels.shape, 4), dtype=np.uint8)
    if overlay.outline:
        labels = np.where(_border(labels), labels, 0)  # one table lookup, no RGBA masking
    return table[np.minimum(labels, len(table) - 1)]


def _border(labels: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour of another value; the image edge counts as one."""
    differs = np.ones(labels.shape, dtype=bool)
    inner = differs[1:-1, 1:-1]
    inner[...] = labels[1:-1, 1:-1] != labels[:-2, 1:-1]
    inner |= labels[1:-1, 1:-1] != labels[2:, 1:-1]
    inner |= labels[1:-1, 1:-1] != labels[1:-1, :-2]
    inner |= labels[1:-1, 1:-1] != labels[1:-1, 2:]
    return differs
