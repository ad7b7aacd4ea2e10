"""`LabelLayer`: the open label map drawn over one `SliceView`, as a pixmap item above the
image in the view's scene (scene units are millimetres, as for the image).

It observes the `LabelOverlay` (which labels, opacity, fill or outline) and the session's
volume and cursor, and redraws only when what it shows changed. The view calls `refresh`
from its own refresh, which also covers a change of plane.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtGui import QPixmap

from birdview.core import geometry
from birdview.core.labels_overlay import LabelOverlay, render_rgba
from birdview.core.session import Session
from birdview.ui._observe import observe
from birdview.ui.pixmap_overlay import overlay_item, show_rgba

__all__ = ["LabelLayer", "attach_label_layers"]


class LabelLayer(QObject):
    """Draws ``overlay`` over ``view`` (a `SliceView`)."""

    def __init__(self, view, session: Session, overlay: LabelOverlay) -> None:
        super().__init__(view)
        self._view = view
        self._session = session
        self._overlay = overlay
        self._key: tuple | None = None
        self.rgba: np.ndarray | None = None  # what is shown now (kept alive for the QImage)
        self.item = overlay_item(view, 1)  # above the image, below the boxes in the foreground
        observe(self, overlay.events.all, self.refresh)  # any field of the overlay
        view.layers.append(self)

    def refresh(self, *_: object) -> None:
        volume, label_map = self._session.volume, self._overlay.label_map
        if volume is None or label_map is None or label_map.volume.shape != volume.shape:
            self._show(None, (1.0, 1.0))
            return
        if not self._view.isVisible():
            self._key = None
            return
        plane = self._view.plane
        index = self._session.slice_index(plane)
        o = self._overlay
        key = (id(label_map), volume.token, plane, index, o.hidden, o.opacity, o.outline, o.visible)
        if key == self._key:
            return
        self._key = key
        rgba = render_rgba(label_map.slice(plane, index), o)
        self._show(rgba, geometry.pixel_size_mm(volume, plane))

    def clear(self) -> None:
        """Show nothing until the next refresh (e.g. while the view previews another study)."""
        self._show(None, (1.0, 1.0))

    def _show(self, rgba: np.ndarray | None, pixel_mm: tuple[float, float]) -> None:
        if rgba is None:
            self._key, self.rgba = None, None
            self.item.setPixmap(QPixmap())
            return
        self.rgba = show_rgba(self.item, rgba, pixel_mm)
        self._view.viewport().update()


def attach_label_layers(views, session: Session, overlay: LabelOverlay) -> list[LabelLayer]:
    """One label layer on each of ``views``."""
    return [LabelLayer(view, session, overlay) for view in views]
