"""`Box`: a rectangle drawn on (or found by the model in) one displayed slice.

Coordinates are image pixel *edges* of the slice as `geometry.extract_slice` shows it: the
top-left pixel spans [0, 1) × [0, 1), so a box around the whole W×H slice is (0, 0, W, H).
Edges, not centres, because that is how every model family writes boxes (a 0–1000 grid or
pixels of the resized input both measure the image's extent, not its pixel centres).

`geometry.view_to_index` works in pixel-*centre* coordinates (the top-left pixel's centre is
(0, 0)), so an edge at x maps to the centre coordinate x - 0.5 before it goes to voxels or mm.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from birdview.core.geometry import Plane, index_to_view, view_to_index
from birdview.core.volume import Volume

__all__ = ["Box"]

# Edge coordinates are centre coordinates shifted by half a pixel.
_HALF_PX = 0.5


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle on one slice of one plane.

    Attributes:
        plane: the plane of the slice the box was drawn on.
        slice_index: which slice of that plane (as counted by `geometry.slice_count`).
        x1_px, y1_px, x2_px, y2_px: left, top, right and bottom pixel edges; x1 < x2, y1 < y2.
        label: what the box shows ("liver"), "" when unnamed.
        score: a confidence, when the source gives one.
        flags: what had to be fixed to get the box, e.g. ("swapped", "clamped").
    """

    plane: Plane
    slice_index: int
    x1_px: float
    y1_px: float
    x2_px: float
    y2_px: float
    label: str = ""
    score: float | None = None
    flags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "plane", Plane(self.plane))
        try:
            slice_index = operator.index(self.slice_index)
        except TypeError as exc:
            raise TypeError(
                f"Unable to build a box as the slice index {self.slice_index!r} is not an integer"
            ) from exc
        if slice_index < 0:
            raise ValueError(
                f"Unable to build a box as the slice index {slice_index!r} is negative"
            )
        object.__setattr__(self, "slice_index", slice_index)
        edges = tuple(float(v) for v in (self.x1_px, self.y1_px, self.x2_px, self.y2_px))
        if not all(math.isfinite(v) for v in edges):
            raise ValueError(f"Unable to build a box as the edges {edges!r} are not all finite")
        if not (edges[0] < edges[2] and edges[1] < edges[3]):
            raise ValueError(
                f"Unable to build a box as the edges {edges!r} do not satisfy x1 < x2 and y1 < y2"
            )
        for name, value in zip(("x1_px", "y1_px", "x2_px", "y2_px"), edges, strict=True):
            object.__setattr__(self, name, value)
        if self.score is not None:
            object.__setattr__(self, "score", float(self.score))
        object.__setattr__(self, "label", str(self.label))
        object.__setattr__(self, "flags", tuple(str(f) for f in self.flags))

    # -- size --------------------------------------------------------------------------------

    @property
    def width_px(self) -> float:
        return self.x2_px - self.x1_px

    @property
    def height_px(self) -> float:
        return self.y2_px - self.y1_px

    @property
    def area_px(self) -> float:
        return self.width_px * self.height_px

    def clamped(self, width_px: float, height_px: float) -> Box:
        """The part of the box inside a width × height image, flagged "clamped" if it changed.

        Raises:
            ValueError: the box lies entirely outside the image.
        """
        x1, x2 = max(self.x1_px, 0.0), min(self.x2_px, float(width_px))
        y1, y2 = max(self.y1_px, 0.0), min(self.y2_px, float(height_px))
        if (x1, y1, x2, y2) == (self.x1_px, self.y1_px, self.x2_px, self.y2_px):
            return self
        if not (x1 < x2 and y1 < y2):
            raise ValueError(
                f"Unable to clamp the box {self.edges_px!r} as it lies outside the "
                f"{width_px!r} × {height_px!r} image"
            )
        flags = self.flags if "clamped" in self.flags else (*self.flags, "clamped")
        return replace(self, x1_px=x1, y1_px=y1, x2_px=x2, y2_px=y2, flags=flags)

    @property
    def edges_px(self) -> tuple[float, float, float, float]:
        """(x1, y1, x2, y2)."""
        return (self.x1_px, self.y1_px, self.x2_px, self.y2_px)

    # -- voxels and millimetres --------------------------------------------------------------

    def to_voxel_corners(self, volume: Volume) -> np.ndarray:
        """The four corners as continuous (i, j, k) indices, shape (4, 3), in the order
        top-left, top-right, bottom-right, bottom-left (as seen on screen).

        The corners lie on the plane through the centres of the slice's voxels; they are the
        outer edges of the box's pixels, so a box around one pixel spans one voxel.
        """
        corners = (
            (self.x1_px, self.y1_px),
            (self.x2_px, self.y1_px),
            (self.x2_px, self.y2_px),
            (self.x1_px, self.y2_px),
        )
        return np.array(
            [
                view_to_index(volume, self.plane, self.slice_index, x - _HALF_PX, y - _HALF_PX)
                for x, y in corners
            ]
        )

    def to_lps_mm(self, volume: Volume) -> np.ndarray:
        """The four corners (as in `to_voxel_corners`) in patient LPS mm, shape (4, 3)."""
        return volume.index_to_lps(self.to_voxel_corners(volume))

    def size_mm(self, volume: Volume) -> tuple[float, float]:
        """(width, height) in mm on the slice: true lengths, so oblique volumes are right too."""
        top_left, top_right, _, bottom_left = self.to_lps_mm(volume)
        return (
            float(np.linalg.norm(top_right - top_left)),
            float(np.linalg.norm(bottom_left - top_left)),
        )

    @classmethod
    def from_voxel(
        cls,
        volume: Volume,
        plane: Plane,
        ijk: Iterable[Iterable[float]],
        *,
        label: str = "",
        score: float | None = None,
    ) -> Box:
        """The box on ``plane`` bounding continuous (i, j, k) points (e.g. the corners from
        `to_voxel_corners`); the slice is the one nearest to the points' mean.

        Raises:
            ValueError: the points span no area on that plane, or fall before its first slice.
        """
        points = np.asarray(list(ijk), dtype=float).reshape(-1, 3)
        views = [index_to_view(volume, plane, p) for p in points]
        slice_index = index_to_view(volume, plane, points.mean(axis=0))[0]
        cols = [col + _HALF_PX for _, col, _ in views]
        rows = [row + _HALF_PX for _, _, row in views]
        return cls(
            plane, slice_index, min(cols), min(rows), max(cols), max(rows), label=label, score=score
        )

    @classmethod
    def from_lps_mm(
        cls,
        volume: Volume,
        plane: Plane,
        xyz_lps: Iterable[Iterable[float]],
        *,
        label: str = "",
        score: float | None = None,
    ) -> Box:
        """The box on ``plane`` bounding patient LPS points in mm (inverse of `to_lps_mm`).

        Raises:
            ValueError: as `from_voxel`.
        """
        points = np.asarray(list(xyz_lps), dtype=float).reshape(-1, 3)
        return cls.from_voxel(volume, plane, volume.lps_to_index(points), label=label, score=score)
