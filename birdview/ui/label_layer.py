"""`LabelLayer`: the open label map drawn over one `SliceView`, as a pixmap item above the
image in the view's scene (scene units are millimetres, as for the image).

It observes the `LabelOverlay` (which labels, opacity, fill or outline) and the session's
volume and cursor, and redraws only when what it shows changed. The view calls `refresh`
from its own refresh, which also covers a change of plane.
"""

from __future__ import annotations

import numpy as np

from birdview.core.labels_overlay import LabelOverlay, render_rgba
from birdview.core.session import Session
from birdview.core.volume import Volume
from birdview.ui._observe import observe
from birdview.ui.pixmap_overlay import SliceLayer

__all__ = ["LabelLayer", "attach_label_layers"]


class LabelLayer(SliceLayer):
    """Draws ``overlay`` over ``view`` (a `SliceView`)."""

    def __init__(self, view, session: Session, overlay: LabelOverlay) -> None:
        super().__init__(view, session, 1)  # above the image, below the boxes in the foreground
        self._overlay = overlay
        observe(self, overlay.events.all, self.refresh)  # any field of the overlay

    def _shows(self, volume: Volume) -> bool:
        label_map = self._overlay.label_map
        return label_map is not None and label_map.volume.shape == volume.shape

    def _key_of(self, volume: Volume, plane, index: int) -> tuple:
        o = self._overlay
        return (
            id(o.label_map),
            volume.token,
            plane,
            index,
            o.hidden,
            o.opacity,
            o.outline,
            o.visible,
        )

    def _render(self, plane, index: int) -> np.ndarray:
        return render_rgba(self._overlay.label_map.slice(plane, index), self._overlay)


def attach_label_layers(views, session: Session, overlay: LabelOverlay) -> list[LabelLayer]:
    """One label layer on each of ``views``."""
    return [LabelLayer(view, session, overlay) for view in views]
