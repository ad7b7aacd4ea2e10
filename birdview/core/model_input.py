"""The image the model sees: rendered from the data, SA-Med2D-20M style, never from the screen.

BiRD was trained on SA-Med2D-20M slices, which were normalised per volume: clipped to the
volume's 0.5–99.5 percentile range and scaled to 0–255. The model should see our slices the
same way. The user's display window is deliberately not used: a narrow lung or bone window
would shift the model's input distribution away from what it learnt, and its answers would
change with a slider that is meant to change only what the clinician sees.

The range belongs to the whole volume, not the slice (a slice through the skull and one through
the abdomen must share a scale), so it is computed once per volume and passed in::

    intensity_range = volume_intensity_range(volume)       # once, when the volume opens
    rgb = render_for_model(volume, plane, index, intensity_range=intensity_range)
"""

from __future__ import annotations

import numpy as np

from birdview.core.box_codecs import square_padding
from birdview.core.geometry import Plane, extract_slice
from birdview.core.volume import Volume

__all__ = [
    "LOW_PERCENTILE",
    "HIGH_PERCENTILE",
    "pad_to_square",
    "render_for_model",
    "volume_intensity_range",
]

LOW_PERCENTILE = 0.5
HIGH_PERCENTILE = 99.5

# Volumes up to this many voxels are read whole; larger ones through a fixed random sample,
# which puts the percentiles within a fraction of a grey level at a fraction of the cost.
_EXACT_MAX_VOXELS = 4_000_000
_SAMPLE_VOXELS = 1_000_000
_SAMPLE_SEED = 0  # fixed: the same volume always gets the same range


def volume_intensity_range(volume: Volume) -> tuple[float, float]:
    """(low, high): the volume's 0.5 and 99.5 percentiles, ignoring NaN.

    Deterministic; large volumes are sampled. Degenerate volumes (constant, or with a spike
    that leaves the percentiles equal) get their min and max, and constant ones (v, v + 1).
    """
    values = _sample(volume.voxels)
    if values.dtype.kind == "f":
        values = values[np.isfinite(values)]
    if values.size == 0:
        return (0.0, 1.0)
    low, high = (float(v) for v in np.percentile(values, [LOW_PERCENTILE, HIGH_PERCENTILE]))
    if high <= low:
        low, high = float(values.min()), float(values.max())
    if high <= low:
        high = low + 1.0
    return (low, high)


def _sample(voxels: np.ndarray) -> np.ndarray:
    """All values, or a fixed random sample of them; indexes each axis, so a non-contiguous
    (reoriented) view is never copied whole."""
    if voxels.size <= _EXACT_MAX_VOXELS:
        return np.asarray(voxels).reshape(-1)
    rng = np.random.default_rng(_SAMPLE_SEED)
    index = tuple(rng.integers(0, n, _SAMPLE_VOXELS) for n in voxels.shape)
    return voxels[index]


def render_for_model(
    volume: Volume,
    plane: Plane,
    index: int,
    *,
    intensity_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """One slice as a (rows, cols, 3) uint8 RGB array, the way the model was trained to see it.

    Grey values are clipped to ``intensity_range`` (default: `volume_intensity_range`,
    which is slow on big volumes; pass it in) and scaled to 0–255, then copied to R, G and B.
    8-bit RGB images (photographs: fundus, endoscopy, dermoscopy) pass through unchanged;
    other RGB data is scaled like grey.

    Raises:
        IndexError: ``index`` is outside the plane's slices.
        ValueError: ``intensity_range`` is not a finite (low, high) with low < high.
    """
    image = extract_slice(volume, plane, index)
    if volume.is_rgb and image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    if intensity_range is None:
        intensity_range = volume_intensity_range(volume)
    low, high = _checked_range(intensity_range)
    scaled = (np.clip(image.astype(np.float64), low, high) - low) * (255.0 / (high - low))
    grey = np.rint(np.nan_to_num(scaled, nan=0.0)).astype(np.uint8)
    if grey.ndim == 3:
        return np.ascontiguousarray(grey)
    return np.repeat(grey[:, :, np.newaxis], 3, axis=2)


def _checked_range(intensity_range: tuple[float, float]) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in intensity_range)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"Unable to render for the model as intensity_range {intensity_range!r} is not "
            "(low, high)"
        ) from exc
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(
            f"Unable to render for the model as intensity_range {intensity_range!r} is not a "
            "finite (low, high) with low < high"
        )
    return low, high


def pad_to_square(image: np.ndarray) -> np.ndarray:
    """``image`` (rows, cols[, channels]) centred in a black square of its longer side, the
    odd pixel after (`box_codecs.square_padding`), for families whose processor squashes any
    image to a square (MedGemma's notebooks pad first, so boxes keep the anatomy's shape)."""
    image = np.asarray(image)
    height, width = image.shape[:2]
    left, top = square_padding(width, height)
    side = max(width, height)
    pads = [(top, side - height - top), (left, side - width - left)]
    pads += [(0, 0)] * (image.ndim - 2)
    return np.pad(image, pads)
