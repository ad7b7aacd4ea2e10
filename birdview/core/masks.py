"""Segmentation masks: compact transport, placing slices into a volume, and the numbers a
radiologist reads off a mask (volume in mL, axial long/short axis in mm, mean/SD HU).

A mask is a boolean array on a volume's grid, (slices, rows, cols) like `Volume.voxels`, or a
2D (rows, cols) array for one slice of one plane as `geometry.extract_slice` shows it. Numpy
only (``core``'s rule), so the viewer, the worker and the trainer share it.

Masks cross the process boundary as `PackedMask` (one bit a pixel, ``np.packbits``): a
512 × 512 slice is 32 KiB, not the 256 KiB of a bool array or more as a pickled tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from birdview.core.geometry import Plane
from birdview.core.volume import Volume

__all__ = [
    "Diameters",
    "MaskMeasures",
    "PackedMask",
    "axial_diameters_mm",
    "hu_stats",
    "mask_bbox",
    "mask_volume_ml",
    "measure",
    "put_slice",
    "voxel_volume_ml",
]


@dataclass(frozen=True)
class PackedMask:
    """A 2D boolean mask, one bit a pixel (row-major, `np.packbits` order)."""

    shape: tuple[int, int]
    bits: bytes

    @classmethod
    def pack(cls, mask: np.ndarray) -> PackedMask:
        """Pack a 2D mask (anything non-zero is in).

        Raises:
            ValueError: ``mask`` is not 2D.
        """
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise ValueError(f"Unable to pack a mask of shape {mask.shape!r}; expected 2D")
        rows, cols = (int(n) for n in mask.shape)
        return cls((rows, cols), np.packbits(mask.astype(bool, copy=False), axis=None).tobytes())

    def unpack(self) -> np.ndarray:
        """The (rows, cols) bool array.

        Raises:
            ValueError: the bits do not fill the shape (a damaged message).
        """
        rows, cols = (int(n) for n in self.shape)
        needed = (rows * cols + 7) // 8
        if rows < 0 or cols < 0 or len(self.bits) != needed:
            raise ValueError(
                f"Unable to unpack a {self.shape!r} mask from {len(self.bits)} bytes; "
                f"expected {needed}"
            )
        flat = np.unpackbits(np.frombuffer(self.bits, dtype=np.uint8), count=rows * cols)
        return flat.reshape(rows, cols).astype(bool)

    @property
    def empty(self) -> bool:
        return not any(self.bits)


def mask_bbox(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """(x1, y1, x2, y2) pixel edges of a 2D mask's bounding box (a `Box`'s convention: the
    first column's left edge to the last column's right edge), or None when it is empty."""
    mask = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))


def put_slice(mask3d: np.ndarray, plane: Plane, index: int, mask2d: np.ndarray) -> None:
    """Write a 2D mask of slice ``index`` of ``plane`` (as `geometry.extract_slice` shows it)
    into a (slices, rows, cols) mask, in place.

    Raises:
        IndexError: ``index`` is outside the plane's slices.
        ValueError: ``mask2d`` does not have that slice's shape.
    """
    plane = Plane(plane)
    k, j, i = mask3d.shape
    count = {Plane.AXIAL: k, Plane.CORONAL: j, Plane.SAGITTAL: i}[plane]
    if not 0 <= int(index) < count:
        raise IndexError(f"Unable to place {plane.value} slice {index} of 0..{count - 1}")
    if plane is Plane.AXIAL:
        target = mask3d[int(index)]
    elif plane is Plane.CORONAL:  # extract_slice shows k reversed (head up)
        target = mask3d[::-1, int(index), :]
    else:
        target = mask3d[::-1, :, int(index)]
    if target.shape != np.shape(mask2d):
        raise ValueError(
            f"Unable to place a {np.shape(mask2d)!r} mask on a {target.shape!r} {plane.value} slice"
        )
    target[...] = np.asarray(mask2d, dtype=bool)


# -- measures ---------------------------------------------------------------------------------


def voxel_volume_ml(volume: Volume) -> float:
    """One voxel's volume in mL: |det(direction · diag(spacing))| / 1000 (an oblique or
    sheared grid's real voxel volume, not just the product of the spacings)."""
    axes = np.asarray(volume.direction, dtype=float) * np.asarray(volume.spacing_mm, dtype=float)
    return abs(float(np.linalg.det(axes))) / 1000.0


def mask_volume_ml(mask: np.ndarray, volume: Volume) -> float:
    """The mask's volume in mL on ``volume``'s grid.

    Raises:
        ValueError: the mask is not on the volume's grid.
    """
    mask = _checked(mask, volume)
    return int(np.count_nonzero(mask)) * voxel_volume_ml(volume)


@dataclass(frozen=True)
class Diameters:
    """The axial slice where the mask is longest, and its long and short axis there.

    ``long_mm``: the greatest distance between two points of the mask (pixel corners) on one
    axial slice. ``short_mm``: the greatest extent of the mask along a line perpendicular to
    that long axis, over lines one pixel apart (RECIST's "longest perpendicular diameter").
    """

    slice_index: int
    long_mm: float
    short_mm: float


def axial_diameters_mm(mask: np.ndarray, volume: Volume) -> Diameters | None:
    """The axial long and short axis of the mask (see `Diameters`), or None when empty.

    Distances are measured in the slice's own plane with the column and row spacing; the
    direction matrix is orthonormal in `Volume`, so it does not change lengths in-plane
    except through a shear, which `Volume` does not hold.

    Raises:
        ValueError: the mask is not on the volume's grid.
    """
    mask = _checked(mask, volume)
    best: Diameters | None = None
    spacing = (float(volume.spacing_mm[0]), float(volume.spacing_mm[1]))
    for k in np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1)):
        found = _slice_diameters(mask[k], spacing)
        if best is None or found[0] > best.long_mm:
            best = Diameters(int(k), *found)
    return best


def _slice_diameters(mask2d: np.ndarray, spacing: tuple[float, float]) -> tuple[float, float]:
    rows, cols = np.nonzero(mask2d)
    corners = _hull_candidates(rows, cols, spacing)
    hull = _convex_hull(corners)
    gaps = hull[:, None, :] - hull[None, :, :]
    lengths = np.hypot(gaps[..., 0], gaps[..., 1])
    a, b = np.unravel_index(int(np.argmax(lengths)), lengths.shape)
    long_mm = float(lengths[a, b])
    axis = (hull[b] - hull[a]) / long_mm
    normal = np.array([-axis[1], axis[0]])
    # Pixel centres projected on the long axis (binned one pixel apart) and on its normal;
    # a pixel spans its own size across the normal, so half a pixel is added at each end.
    centres = np.stack([(cols + 0.5) * spacing[0], (rows + 0.5) * spacing[1]], axis=1)
    along = centres @ axis
    across = centres @ normal
    half = 0.5 * (abs(normal[0]) * spacing[0] + abs(normal[1]) * spacing[1])
    step = min(spacing)
    bins = np.floor((along - along.min()) / step).astype(int)
    high = np.full(int(bins.max()) + 1, -np.inf)
    low = np.full(int(bins.max()) + 1, np.inf)
    np.maximum.at(high, bins, across)  # per bin, without a Python loop over bins
    np.minimum.at(low, bins, across)
    filled = np.isfinite(high)
    short_mm = float((high[filled] - low[filled]).max()) + 2 * half
    return long_mm, short_mm


def _hull_candidates(
    rows: np.ndarray, cols: np.ndarray, spacing: tuple[float, float]
) -> np.ndarray:
    """The pixel corners (mm) that can be vertices of the mask's convex hull.

    Only each row's first pixel's left corners and last pixel's right corners can be (a large
    mask has 100 000s of pixels but 2 × rows ends), and of a run of rows whose end stays in one
    column only the run's top and bottom corner: the rest lie on the straight edge between them.
    The hull is then built in Python from a few dozen points instead of thousands (it holds
    Python's lock, and the UI thread waits on it while a mask is measured in a thread).
    """
    edge_rows, first = np.unique(rows, return_index=True)
    last = np.r_[first[1:], rows.size] - 1
    points = [
        _run_ends(edge_rows, cols[first], dx=0),
        _run_ends(edge_rows, cols[last], dx=1),
    ]
    xy = np.concatenate(points).astype(float)
    return np.unique(xy * np.asarray(spacing, dtype=float), axis=0)


def _run_ends(rows: np.ndarray, ends: np.ndarray, dx: int) -> np.ndarray:
    """(x, y) corners on one side (``dx`` 0: left edge of ``ends``; 1: right edge) at the top
    and bottom of each run of adjacent rows whose end is in the same column."""
    same_as_above = np.r_[False, (ends[1:] == ends[:-1]) & (rows[1:] == rows[:-1] + 1)]
    same_as_below = np.r_[same_as_above[1:], False]
    x = ends + dx
    tops = np.stack([x, rows], axis=1)[~same_as_above]
    bottoms = np.stack([x, rows + 1], axis=1)[~same_as_below]
    return np.concatenate([tops, bottoms])


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Andrew's monotone chain over unique points sorted by (x, y); the hull's vertices."""
    order = np.lexsort((points[:, 1], points[:, 0]))
    pts = [tuple(p) for p in points[order]]
    if len(pts) <= 2:
        return np.array(pts)

    def half(seq: list) -> list:
        chain: list = []
        for p in seq:
            while len(chain) >= 2 and _cross(chain[-2], chain[-1], p) <= 0:
                chain.pop()
            chain.append(p)
        return chain

    lower, upper = half(pts), half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])


def _cross(o: tuple, a: tuple, b: tuple) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def hu_stats(mask: np.ndarray, volume: Volume) -> tuple[float, float, int]:
    """(mean, SD, voxel count) of the volume's values inside the mask: Hounsfield units for
    CT, as `Volume.voxels` holds rescaled values. SD is the sample SD (n − 1); NaN for an
    empty mask (mean and SD) or a single voxel (SD).

    Raises:
        ValueError: the mask is not on the volume's grid, or the volume is RGB.
    """
    mask = _checked(mask, volume)
    if volume.is_rgb:
        raise ValueError("Unable to measure intensities inside a mask on an RGB image")
    values = np.asarray(volume.voxels)[mask].astype(np.float64)
    n = int(values.size)
    mean = float(values.mean()) if n else math.nan
    sd = float(values.std(ddof=1)) if n > 1 else math.nan
    return mean, sd, n


@dataclass(frozen=True)
class MaskMeasures:
    """What is shown beside a mask and exported with it."""

    voxels: int
    volume_ml: float
    diameters: Diameters | None
    mean: float
    sd: float


def measure(mask: np.ndarray, volume: Volume) -> MaskMeasures:
    """Volume, axial diameters and (grey volumes only) mean/SD inside the mask.

    Raises:
        ValueError: the mask is not on the volume's grid.
    """
    mask = _checked(mask, volume)
    mean, sd = (math.nan, math.nan) if volume.is_rgb else hu_stats(mask, volume)[:2]
    return MaskMeasures(
        voxels=int(np.count_nonzero(mask)),
        volume_ml=mask_volume_ml(mask, volume),
        diameters=axial_diameters_mm(mask, volume),
        mean=mean,
        sd=sd,
    )


def _checked(mask: np.ndarray, volume: Volume) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != volume.shape:
        raise ValueError(
            f"Unable to measure a mask of shape {mask.shape!r} on a volume of shape "
            f"{volume.shape!r}; a mask must lie on its volume's grid"
        )
    return mask.astype(bool, copy=False)
