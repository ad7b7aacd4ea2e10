"""2D image files and their mask files: reading them (`read_rgb`, `read_mask`) and the
unread pair a 2D adapter plans with (`ImageFiles`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainer.data.source_records import LabelMask, SourceImage

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageFiles",
    "image_files_in",
    "otsu_threshold",
    "owner_of",
    "read_mask",
    "read_rgb",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True, slots=True)
class ImageFiles:
    """A 2D image and its mask files, nothing read yet: small, and sent as is to the worker
    process that reads it (`load`). ``masks`` holds (label, instance, file) triples.

    A build's plan holds one per image, so the paths are plain strings (a `Path` costs
    several times more memory) and the instances have no ``__dict__``.
    """

    name: str
    dataset: str
    case: str
    modality: str
    body_part: str | None
    absent: tuple[str, ...]
    image: str
    masks: tuple[tuple[str, int, str], ...]

    def load(self) -> SourceImage:
        """The image with its masks read (the pixels are rendered only when asked for)."""
        return SourceImage(
            name=self.name,
            dataset=self.dataset,
            case=self.case,
            patient=self.case,
            modality=self.modality,
            plane=None,
            body_part=self.body_part,
            masks=tuple(
                LabelMask(label, n, read_mask(Path(path))) for label, n, path in self.masks
            ),
            absent=self.absent,
            render=_rgb_loader(Path(self.image)),
        )


def read_rgb(path: Path) -> np.ndarray:
    """An image file as (rows, cols, 3) uint8 RGB (alpha dropped)."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


# Formats whose encoders blur edges (JPEG, lossy JPEG 2000 and WebP): their masks ring, so grey
# values near an edge are neither 0 nor the foreground value.
_LOSSY_FORMATS = frozenset({"JPEG", "JPEG2000", "WEBP", "MPO"})
# The 8-bit modes Pillow decodes those formats to; a 16-bit JPEG 2000 is read with ``> 0``.
_EIGHT_BIT_MODES = frozenset({"L", "LA", "RGB", "RGBA", "CMYK", "YCbCr", "P"})


def read_mask(path: Path) -> np.ndarray:
    """A mask file as a boolean array.

    Lossless files (PNG, BMP, TIFF) keep every non-zero grey value as foreground, so label
    values of any size count. 8-bit lossy files (JPEG, JPEG 2000, WebP) are cut at Otsu's
    threshold of their grey histogram: ``> 0`` there would take in the compression's ringing
    around every edge (boxes several grid units too large, and specks as extra components).
    """
    from PIL import Image

    with Image.open(path) as image:
        lossy = image.format in _LOSSY_FORMATS and image.mode in _EIGHT_BIT_MODES
        grey = np.asarray(image.convert("L"))
    return grey > (otsu_threshold(grey) if lossy else 0)


def otsu_threshold(grey: np.ndarray) -> int:
    """Otsu's threshold of a uint8 image: the ``t`` for which ``grey > t`` splits the grey
    values into two classes of the largest between-class variance.

    A clean two-valued mask gives its lower value (every ``t`` between the two splits alike
    and the first wins), so a lossless mask saved as JPEG without ringing reads as ``> 0``
    would; a one-valued image gives 0 (all foreground unless it is black).
    """
    counts = np.bincount(grey.ravel(), minlength=256).astype(np.float64)
    weight = np.cumsum(counts)  # pixels <= t
    mass = np.cumsum(counts * np.arange(256))
    total, total_mass = weight[-1], mass[-1]
    upper = total - weight
    with np.errstate(divide="ignore", invalid="ignore"):
        # between-class variance * total^2 = (total_mass * w0 - total * m0)^2 / (w0 * w1)
        spread = (total_mass * weight - total * mass) ** 2 / (weight * upper)
    spread[~np.isfinite(spread)] = -1.0  # one class empty: not a split
    return int(np.argmax(spread)) if spread.max() > 0 else 0


def image_files_in(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by path."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _rgb_loader(path: Path) -> Callable[[], np.ndarray]:
    return lambda: read_rgb(path)


def owner_of(mask_stem: str, by_stem: dict[str, Path]) -> Path | None:
    """The image whose stem, then "_", starts ``mask_stem``; the longest such stem wins, so
    "1_CT" never takes the masks of "1_CT_lung". A look-up per "_" of the mask's name, not a
    pass over every image (SA-Med2D-20M: 20 M masks, 3.7 M images)."""
    cut = mask_stem.rfind("_")
    while cut > 0:
        found = by_stem.get(mask_stem[:cut])
        if found is not None:
            return found
        cut = mask_stem.rfind("_", 0, cut)
    return None
