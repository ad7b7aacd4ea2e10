"""Window/level: turning stored values into 8-bit grey levels for the screen.

This is the *display* rendering only. What the model sees is rendered separately (SA-Med2D
style, percentile-clipped per volume), so a user's window never shifts the model's input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PRESETS", "Window", "apply_window", "auto_window", "default_window", "presets_for"]


@dataclass(frozen=True)
class Window:
    """A display window: values in [center - width/2, center + width/2] map to 0..255."""

    center: float
    width: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.center) and np.isfinite(self.width)):
            raise ValueError(f"Unable to use window {self!r} as it is not finite")
        object.__setattr__(self, "width", max(float(self.width), 1e-3))
        object.__setattr__(self, "center", float(self.center))

    @property
    def low(self) -> float:
        return self.center - self.width / 2

    @property
    def high(self) -> float:
        return self.center + self.width / 2

    def label(self) -> str:
        """How radiologists write it: W/L."""
        return f"W {self.width:.0f} / L {self.center:.0f}"


# Radiologists' conventional CT windows, written as (center=level, width). The order is the
# order of the number keys 1-7.
PRESETS: dict[str, Window] = {
    "CT brain": Window(40, 80),
    "Subdural": Window(75, 200),
    "Lung": Window(-600, 1500),
    "Soft tissue": Window(40, 400),
    "Abdomen": Window(50, 400),
    "Liver": Window(30, 150),
    "Bone": Window(400, 1800),
}


def presets_for(modality: str) -> dict[str, Window]:
    """Fixed presets only make sense on a calibrated (Hounsfield) scale, i.e. for CT."""
    return dict(PRESETS) if modality.upper() == "CT" else {}


def auto_window(values: np.ndarray, *, low_pct: float = 0.5, high_pct: float = 99.5) -> Window:
    """A window spanning the given percentiles of the values (sampled, so it stays fast)."""
    values = np.asarray(values)
    if values.size > 2_000_000:
        # Stride every axis of the (possibly non-contiguous) array: no full-size copy, which
        # matters because this runs on the GUI thread when a volume opens.
        step = int(np.ceil((values.size / 1_000_000) ** (1 / values.ndim)))
        values = values[(slice(None, None, step),) * values.ndim]
    flat = values.reshape(-1)
    flat = flat[np.isfinite(flat)] if flat.dtype.kind == "f" else flat
    if flat.size == 0:
        return Window(127.5, 255)
    low, high = np.percentile(flat, [low_pct, high_pct])
    if high <= low:
        low, high = float(flat.min()), float(flat.max())
    if high <= low:
        high = low + 1
    return Window((low + high) / 2, high - low)


def default_window(volume) -> Window:
    """The window a study opens with: the header's if it has one; for CT without one (NIfTI),
    the soft-tissue window; else percentiles."""
    if volume.window is not None:
        return Window(*volume.window)
    if volume.is_rgb and volume.voxels.dtype == np.uint8:
        return Window(127.5, 255)
    if volume.modality.upper() == "CT":
        # Percentiles of a CT run from the air to the bone and wash the organs out; a body CT
        # is read in the soft-tissue window first.
        return PRESETS["Soft tissue"]
    return auto_window(volume.voxels)


_lut_cache: dict[tuple[str, float, float], tuple[int, np.ndarray]] = {}


def apply_window(image: np.ndarray, window: Window) -> np.ndarray:
    """Map values to uint8 grey levels through the window (RGB images per channel)."""
    image = np.asarray(image)
    if image.dtype in (np.uint8, np.int8, np.uint16, np.int16):
        offset, lut = _lookup_table(image.dtype, window)
        index = image.astype(np.int32) + offset if offset else image
        return lut[index]
    scale = 255.0 / window.width
    out = (image.astype(np.float32) - np.float32(window.low)) * np.float32(scale)
    np.nan_to_num(out, copy=False, nan=0.0)  # NaN voxels (some NIfTI masks) show as black
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def _lookup_table(dtype: np.dtype, window: Window) -> tuple[int, np.ndarray]:
    """A table over every value of a small integer type: one fancy-index per slice."""
    key = (np.dtype(dtype).str, window.center, window.width)
    cached = _lut_cache.get(key)
    if cached is not None:
        return cached
    info = np.iinfo(dtype)
    values = np.arange(info.min, info.max + 1, dtype=np.float32)
    lut = np.clip((values - window.low) * (255.0 / window.width), 0, 255).astype(np.uint8)
    entry = (-int(info.min), lut)
    if len(_lut_cache) > 32:
        _lut_cache.clear()
    _lut_cache[key] = entry
    return entry
