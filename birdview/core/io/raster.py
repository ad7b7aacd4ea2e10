"""2D pictures (PNG, JPEG, TIFF, BMP) through Pillow, as one-slice volumes without geometry.

Grey stays grey at its own bit depth, alpha is dropped, and colour images whose three channels
are equal everywhere (BiomedParse stores its grey images as RGBA) become grey. Multi-page TIFFs
become one slice per page when the pages agree in size and kind. Every picture is modality "OT":
its values are grey levels, not Hounsfield units, whatever its name says (a word like "CT" in
the name stays visible as the series description). The trainer keeps its own name rules.
"""

from __future__ import annotations

import itertools
import logging
import os
import struct
import time
import zlib

import numpy as np
from PIL import Image, ImageFile, ImageOps, ImageSequence, UnidentifiedImageError

from birdview.core.errors import VolumeReadError
from birdview.core.io._limits import check_fits, check_regular_file
from birdview.core.io._messages import summary
from birdview.core.io.catalog import CancelFn, ProgressFn, SeriesEntry, check_cancel
from birdview.core.volume import SliceSource, Volume, short_id

__all__ = ["RASTER_SUFFIXES", "load_raster", "scan_raster"]

logger = logging.getLogger(__name__)

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

# Modes kept as one grey channel at their own bit depth; LA loses its alpha.
_GREY_MODES = {"L", "I;16", "I;16L", "I;16B", "I;16N", "I", "F"}
_TO_GREY_MODES = {"LA", "La", "1"}
_BYTES_PER_VALUE = {"I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2, "I": 4, "F": 4}
# While a page decodes, Pillow's image, its RGB conversion and their arrays are held too.
_PAGE_WORK_BYTES_PER_PIXEL = 16
# Pillow (libtiff) finds page n by walking the pages before it: 4000 pages take seconds to
# decode, 100000 would take hours. Volumes have at most a few thousand slices.
MAX_PAGES = 10_000

# What Pillow raises on damaged files: its own errors are OSError or SyntaxError, but its
# decoders let others through on some corruptions.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    zlib.error,
    IndexError,
    TypeError,
    struct.error,
    Image.DecompressionBombError,
)


def scan_raster(path: str) -> SeriesEntry:
    """Read a picture's size (and page count) into a catalog entry.

    Raises:
        VolumeReadError: the file is missing or not an image Pillow can read.
    """
    path = os.fspath(path)
    with _open(path) as image:
        try:
            sizes = _page_sizes(path, image)
            n_pages = len(sizes) if len(set(sizes)) == 1 else 1
        except _DECODE_ERRORS as exc:
            raise VolumeReadError(path, f"the image is damaged ({summary(exc)})") from exc
    name = os.path.basename(path)
    return SeriesEntry(
        kind="raster",
        key=short_id(os.path.abspath(path)),
        patient="",
        study="",
        description=name,
        modality="OT",
        n_slices=n_pages,
        paths=(path,),
    )


def load_raster(
    entry: SeriesEntry,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> Volume:
    """Decode a picture into a one-slice volume (one slice per page for multi-page TIFF).

    Raises:
        VolumeReadError: the file is missing, truncated, damaged or too large to decode.
        LoadCancelled: ``cancel()`` returned True.
    """
    path = entry.paths[0]
    started = time.perf_counter()
    check_cancel(cancel)
    # Pillow pads truncated images with grey when this is set; a viewer must refuse them.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    warnings: list[str] = []
    with _open(path) as image:
        try:
            voxels = _decode_pages(path, image, warnings, progress, cancel)
        except _DECODE_ERRORS as exc:
            reason = f"the image is truncated or damaged ({summary(exc)})"
            raise VolumeReadError(path, reason) from exc
        except MemoryError as exc:
            raise VolumeReadError(path, "there is not enough memory to decode it") from exc
    name = os.path.basename(path)
    volume = Volume(
        voxels=voxels,
        modality="OT",  # grey levels, not a calibrated scale: no HU, no CT presets
        # Pictures are already rendered for display: show them as stored, not re-windowed.
        window=(127.5, 255.0) if voxels.dtype == np.uint8 else None,
        metadata={"series_description": name},
        sources=tuple(
            SliceSource(path, frame=k if len(voxels) > 1 else None) for k in range(len(voxels))
        ),
        warnings=tuple(warnings),
        has_geometry=False,
    )
    logger.info(
        "read picture %s: shape=%s dtype=%s in %.2f s",
        volume.short_id,
        voxels.shape,
        voxels.dtype,
        time.perf_counter() - started,
    )
    return volume


# -- decoding -------------------------------------------------------------------------------


def _open(path: str) -> Image.Image:
    check_regular_file(path)  # Pillow would wait forever on a named pipe
    try:
        return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise VolumeReadError(path, f"it is too large to decode safely ({summary(exc)})") from exc
    except UnidentifiedImageError as exc:
        raise VolumeReadError(path, "it is not an image Pillow can read") from exc
    except _DECODE_ERRORS as exc:
        raise VolumeReadError(path, f"the image is damaged ({summary(exc)})") from exc


def _page_sizes(path: str, image: Image.Image) -> list[tuple[tuple[int, int], str]]:
    """(size, mode) of every page; only TIFFs count as stacks (GIF/APNG frames are animations).

    Raises:
        VolumeReadError: the file has more than `MAX_PAGES` pages (counting stops there).
    """
    if image.format != "TIFF":
        return [(image.size, image.mode)]
    pages = itertools.islice(ImageSequence.Iterator(image), MAX_PAGES + 1)
    sizes = [(page.size, page.mode) for page in pages]
    if len(sizes) > MAX_PAGES:
        raise VolumeReadError(
            path, f"it holds more than {MAX_PAGES} pages, more than BirdView opens"
        )
    return sizes


def _decode_pages(
    path: str,
    image: Image.Image,
    warnings: list[str],
    progress: ProgressFn | None,
    cancel: CancelFn | None,
) -> np.ndarray:
    """Every page, decoded straight into one array that was checked to fit beforehand."""
    sizes = _page_sizes(path, image)
    if len(set(sizes)) > 1:
        warnings.append(
            f"the file holds {len(sizes)} pages of different sizes or kinds; showing the first"
        )
        sizes = sizes[:1]
    (width, height), mode = sizes[0]
    colour = mode not in _GREY_MODES and mode not in _TO_GREY_MODES
    pages = "1 page" if len(sizes) == 1 else f"{len(sizes)} pages"
    check_fits(
        path,
        _stack_bytes(len(sizes), width, height, mode),
        f"its {pages} of {width}×{height} pixels",
    )
    stack: np.ndarray | None = None
    any_colour = False
    for number in range(len(sizes)):
        check_cancel(cancel)
        image.seek(number)
        page = _page_pixels(image)
        if stack is None:
            shape = (len(sizes), *page.shape[:2], 3) if colour else (len(sizes), *page.shape)
            stack = np.empty(shape, dtype=np.uint8 if colour else page.dtype)
        if page.shape[:2] != stack.shape[1:3]:
            raise VolumeReadError(
                path, f"its page {number + 1} is turned otherwise than page 1 (EXIF orientation)"
            )
        stack[number] = page if page.ndim == stack.ndim - 1 else page[..., None]
        any_colour = any_colour or page.ndim == 3
        if progress is not None:
            progress(number + 1, len(sizes))
    if colour and not any_colour:  # every page turned out grey: keep one channel
        stack = np.ascontiguousarray(stack[..., 0])  # type: ignore[index]
    return stack  # type: ignore[return-value]


def _stack_bytes(pages: int, width: int, height: int, mode: str) -> int:
    channels = 3 if mode not in _GREY_MODES and mode not in _TO_GREY_MODES else 1
    per_pixel = channels * _BYTES_PER_VALUE.get(mode, 1)
    return width * height * (pages * per_pixel + _PAGE_WORK_BYTES_PER_PIXEL)


def _page_pixels(image: Image.Image) -> np.ndarray:
    """One page as (rows, cols) grey or (rows, cols, 3) uint8 colour."""
    image.load()
    if image.format in ("JPEG", "TIFF"):
        image = ImageOps.exif_transpose(image)  # photos record their rotation in EXIF
    mode = image.mode
    if mode in _GREY_MODES:
        return np.asarray(image)
    if mode in ("LA", "La", "1"):
        return np.asarray(image.convert("L"))
    pixels = np.asarray(image.convert("RGB"))
    grey = pixels[..., 0]
    if np.array_equal(grey, pixels[..., 1]) and np.array_equal(grey, pixels[..., 2]):
        return grey
    return pixels
