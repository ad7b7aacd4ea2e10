"""`Session`: the one mutable, observable object of BirdView.

It holds what the user is looking at: the scanned catalog, the open series and its (canonical)
volume, the cursor, the display window, the main plane and the view layout. Widgets subscribe to
the per-field signals (``session.events.cursor_ijk.connect(...)``) and change state only
through the methods below, which validate first and then mutate. A signal fires only when its
field really changes; when a method changes several fields, all of them are set before the
first signal fires, so every handler sees a consistent session.

Qt-free: this module runs (and is tested) without PySide6.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
from psygnal import evented

from birdview.core import geometry
from birdview.core.display import PRESETS, Window, auto_window, default_window, presets_for
from birdview.core.geometry import Plane
from birdview.core.io.catalog import Catalog, SeriesEntry
from birdview.core.volume import Volume

__all__ = ["LAYOUTS", "Layout", "Session"]

logger = logging.getLogger(__name__)

Layout = Literal["1x1", "1+3"]
LAYOUTS: tuple[str, ...] = ("1x1", "1+3")

IJK = tuple[int, int, int]


@evented
@dataclass
class Session:
    """What is open and how it is shown.

    Attributes:
        catalog: the result of the last scan (series found, files that failed), or None.
        entry: the series whose volume is open, or None.
        volume: the open volume in canonical orientation (i → patient left, j → posterior,
            k → superior; see `birdview.core.geometry.to_canonical`), or None.
        window: the display window, or None when nothing is open.
        cursor_ijk: the cursor voxel (i, j, k) in ``volume``; each view shows the slice of
            its plane through it.
        main_plane: the plane of the large view (the acquisition plane when a volume opens).
        layout: "1x1" (one view) or "1+3" (main view plus axial, coronal and sagittal).
        phi_hidden: patient identity is kept off the screen (presenter mode, or asked for):
            every widget that shows names, IDs, birth dates or study dates observes it.
    """

    catalog: Catalog | None = None
    entry: SeriesEntry | None = None
    volume: Volume | None = None
    window: Window | None = None
    cursor_ijk: IJK = (0, 0, 0)
    main_plane: Plane = Plane.AXIAL
    layout: str = "1x1"
    phi_hidden: bool = False

    # -- opening -----------------------------------------------------------------------------

    def open_catalog(self, catalog: Catalog | None) -> None:
        """Show the result of a scan (the open volume, if any, stays open)."""
        if catalog is not None and not isinstance(catalog, Catalog):
            raise TypeError(f"Unable to open a catalog as {type(catalog).__name__!r} is not one")
        self._commit(catalog=catalog)

    def open_volume(
        self,
        volume: Volume,
        entry: SeriesEntry | None = None,
        acquisition_plane: Plane = Plane.AXIAL,
    ) -> None:
        """Open a canonical volume: cursor at its centre, default window, acquisition plane.

        Raises:
            TypeError: ``volume`` is not a `Volume`.
        """
        if not isinstance(volume, Volume):
            raise TypeError(f"Unable to open a volume as {type(volume).__name__!r} is not one")
        plane = Plane(acquisition_plane)
        n_k, n_j, n_i = volume.shape
        logger.info("opening volume %s shape=%s", volume.short_id, volume.voxels.shape)
        self._commit(
            volume=volume,
            entry=entry,
            window=default_window(volume),
            cursor_ijk=(n_i // 2, n_j // 2, n_k // 2),
            main_plane=plane,
        )

    def close_volume(self) -> None:
        """Show nothing (the catalog stays)."""
        self._commit(volume=None, entry=None, window=None, cursor_ijk=(0, 0, 0))

    # -- cursor and slices -------------------------------------------------------------------

    def slice_count(self, plane: Plane) -> int:
        """Number of slices of ``plane`` (0 when nothing is open)."""
        if self.volume is None:
            return 0
        return int(geometry.slice_count(self.volume, Plane(plane)))

    def slice_index(self, plane: Plane) -> int:
        """The slice of ``plane`` through the cursor (0 when nothing is open)."""
        if self.volume is None:
            return 0
        index = geometry.index_to_view(self.volume, Plane(plane), self.cursor_ijk)[0]
        return int(round(float(index)))

    def move_cursor(self, ijk: tuple[float, float, float]) -> None:
        """Put the cursor on voxel ``ijk`` (rounded and clamped into the volume)."""
        if self.volume is None:
            return
        values = np.asarray(ijk, dtype=float).reshape(-1)
        if values.shape != (3,) or not np.all(np.isfinite(values)):
            raise ValueError(f"Unable to move the cursor as {ijk!r} is not a finite (i, j, k)")
        n_k, n_j, n_i = self.volume.shape
        limits = (n_i - 1, n_j - 1, n_k - 1)
        cursor = tuple(
            int(min(max(round(v), 0), top)) for v, top in zip(values, limits, strict=True)
        )
        self._commit(cursor_ijk=cursor)

    def set_slice(self, plane: Plane, index: int) -> None:
        """Show slice ``index`` (clamped) in ``plane``; the in-plane cursor stays."""
        if self.volume is None:
            return
        plane = Plane(plane)
        count = self.slice_count(plane)
        index = int(min(max(int(index), 0), count - 1))
        _, col, row = geometry.index_to_view(self.volume, plane, self.cursor_ijk)
        self.move_cursor(geometry.view_to_index(self.volume, plane, index, col, row))

    def scroll(self, plane: Plane, delta: int) -> None:
        """Move ``delta`` slices through ``plane`` (clamped at the ends)."""
        if self.volume is None:
            return
        self.set_slice(plane, self.slice_index(plane) + int(delta))

    # -- window ------------------------------------------------------------------------------

    def set_window(self, window: Window) -> None:
        """Show the volume through ``window``; ignored when nothing is open."""
        if not isinstance(window, Window):
            raise TypeError(f"Unable to set the window as {window!r} is not a Window")
        if self.volume is None:
            return
        self._commit(window=window)

    def apply_preset(self, number: int) -> bool:
        """Apply preset ``number`` (1–7, the order of `PRESETS`); False unless the volume is CT.

        Raises:
            ValueError: ``number`` is not 1–7.
        """
        names = list(PRESETS)
        if not 1 <= int(number) <= len(names):
            raise ValueError(f"Unable to apply preset {number!r} as presets are 1-{len(names)}")
        if self.volume is None:
            return False
        presets = presets_for(self.volume.modality)
        if not presets:
            return False
        self._commit(window=presets[names[int(number) - 1]])
        return True

    def apply_auto_window(self) -> None:
        """A window over the 0.5–99.5 percentiles of the volume."""
        if self.volume is not None:
            self._commit(window=auto_window(self.volume.voxels))

    def reset_window(self) -> None:
        """Back to the window the volume opened with (header, else percentiles)."""
        if self.volume is not None:
            self._commit(window=default_window(self.volume))

    # -- views -------------------------------------------------------------------------------

    def set_layout(self, layout: str) -> None:
        """Raises: ValueError: ``layout`` is not one of `LAYOUTS`."""
        if layout not in LAYOUTS:
            raise ValueError(f"Unable to set the layout as {layout!r} is not one of {LAYOUTS}")
        self._commit(layout=layout)

    def set_main_plane(self, plane: Plane) -> None:
        """Raises: ValueError: ``plane`` is not a `Plane` value."""
        self._commit(main_plane=Plane(plane))

    def set_phi_hidden(self, hidden: bool) -> None:
        """Keep patient identity off the screen (True) or show it again."""
        self._commit(phi_hidden=bool(hidden))

    # -- internals ---------------------------------------------------------------------------

    def _commit(self, **changes: Any) -> None:
        """Set the fields, then fire the signals of those that changed, in field order."""
        old = {}
        for name, value in changes.items():
            if not _same(getattr(self, name), value):
                old[name] = getattr(self, name)
                object.__setattr__(self, name, value)  # bypass the per-field emission
        for field in fields(self):
            if field.name in old:  # psygnal's field signals carry (new, old)
                getattr(self.events, field.name).emit(getattr(self, field.name), old[field.name])


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, (Volume, Catalog)) or isinstance(new, (Volume, Catalog)):
        return old is new
    return type(old) is type(new) and old == new
