"""Decoding pixel data and turning stored values into what a `Volume` holds.

pydicom decodes (through the plugins chosen below) and converts YBR to RGB. Here: the codec
order, rescale slope/intercept (or a Modality LUT), MONOCHROME1 inversion, palette colour, and
the choice of a compact voxel type (int16 when the values allow it, float32 only when needed).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import (
    apply_color_lut,
    apply_modality_lut,
    get_decoder,
    iter_pixels,
    pixel_array,
)
from pydicom.uid import UID

from birdview.core.errors import VolumeReadError
from birdview.core.io._dicom_codestream import check_frames
from birdview.core.io._dicom_file import (
    ClampedFile,
    check_regular_file,
    is_passthrough,
    read_deflated_dataset,
    read_header,
)
from birdview.core.io._dicom_series import SeriesPlan
from birdview.core.io._messages import pixel_reason

logger = logging.getLogger(__name__)


@dataclass
class Decoded:
    """One decoded frame: display-ready values for colour, stored values for grey."""

    array: np.ndarray
    low: float  # value range of the frame (grey only)
    high: float


# pydicom's plugins, fastest first. gdcm decodes JPEG 2000 fastest, but its JPEG and JPEG-LS
# codecs abort the whole process on some damaged streams (C++ exceptions nothing can catch),
# so only JPEG 2000 goes to gdcm.
_JPEG_2000 = {
    pydicom.uid.JPEG2000Lossless, pydicom.uid.JPEG2000, pydicom.uid.HTJ2KLossless,
    pydicom.uid.HTJ2KLosslessRPCL, pydicom.uid.HTJ2K,
}  # fmt: skip
_JPEG = {
    pydicom.uid.JPEGBaseline8Bit, pydicom.uid.JPEGExtended12Bit, pydicom.uid.JPEGLossless,
    pydicom.uid.JPEGLosslessSV1, pydicom.uid.JPEGLSLossless, pydicom.uid.JPEGLSNearLossless,
}  # fmt: skip
_PREFERRED = ("pylibjpeg", "pydicom", "pillow", "gdcm")


def decoding_plugins(uid: str) -> list[str]:
    """The pydicom plugins to try for ``uid``, in order; [""] when it needs none.

    Raises:
        NotImplementedError: pydicom has no decoder for ``uid``.
    """
    syntax = UID(uid)
    if not syntax.is_transfer_syntax:
        raise NotImplementedError(f"{uid} is not a transfer syntax")
    if not syntax.is_encapsulated:
        get_decoder(syntax)
        return [""]
    available = get_decoder(syntax).available_plugins
    order = ("gdcm", "pylibjpeg", "pillow") if syntax in _JPEG_2000 else _PREFERRED
    plugins = [name for name in order if name in available]
    plugins += [name for name in available if name not in plugins]
    return [name for name in plugins if name != "gdcm" or syntax in _JPEG_2000]


def codec_problem(uid: str) -> str | None:
    """Why frames in transfer syntax ``uid`` cannot be decoded here, or None if they can."""
    syntax = UID(uid)
    try:
        if decoding_plugins(syntax):
            return None
    except NotImplementedError:
        return f"its transfer syntax {syntax.name} is not supported"
    packages = _missing_packages(get_decoder(syntax).missing_dependencies)
    if syntax in _JPEG and not packages:  # only gdcm is there, and it is not used for JPEG
        packages = ["pylibjpeg", "pylibjpeg-libjpeg"]
    elif not packages:
        packages = ["pylibjpeg"]
    return (
        f"its transfer syntax {syntax.name} needs a codec that is not installed: "
        f"pip install {' '.join(packages)}"
    )


def _missing_packages(missing: list[str]) -> list[str]:
    """Package names from pydicom's "plugin - requires a>=1 and b>=2" lines, pylibjpeg first."""
    missing = sorted(missing, key=lambda line: not line.startswith("pylibjpeg"))
    for line in missing:
        _, _, needs = line.partition("requires ")
        names = [re.split(r"[<>=!~ ]", part.strip())[0] for part in re.split(r",| and ", needs)]
        names = [name for name in names if name and name != "numpy"]
        if names:
            return names
    return []


def decode_file(
    path: str, frames: list[int | None], plan: SeriesPlan, syntax: str, pixel_offset: int
) -> Iterator[tuple[int | None, Decoded]]:
    """Yield (frame, decoded) for the wanted frames of one file (None: a single-frame file).

    Frames are read straight from the file, which needs no copy of the pixel data in memory;
    files that this trips over (deflated, or encoded otherwise than their transfer syntax
    says) are read again whole, the way ``Dataset.pixel_array`` does. Each codec plugin is
    tried in turn until one decodes the file.

    Raises:
        VolumeReadError: the file is gone, damaged, or its pixels cannot be decoded.
    """
    check_regular_file(path)
    if UID(syntax).is_encapsulated:
        check_frames(path, pixel_offset, plan.rows, plan.cols, syntax)
    done: set[int | None] = set()
    errors: list[BaseException] = []
    readers = (
        [_from_dataset]
        if syntax == pydicom.uid.DeflatedExplicitVRLittleEndian
        else [_from_file, _from_dataset]
    )
    for plugin in decoding_plugins(syntax):
        for read in readers:
            try:
                for index, item in read(path, frames, plan, syntax, plugin):
                    if index not in done:
                        done.add(index)
                        yield index, item
                return
            except BaseException as exc:  # noqa: BLE001 - see is_passthrough
                if is_passthrough(exc):
                    raise
                errors.append(exc)
                logger.debug(
                    "%s with plugin %r failed: %s", read.__name__, plugin, type(exc).__name__
                )
    error = _most_telling(errors)
    raise VolumeReadError(path, _decode_reason(path, error)) from error


def _most_telling(errors: list[BaseException]) -> BaseException:
    """The first plugin's complaint (plugins are tried best first), unless it only says it
    does not support the data: "Pillow does not support 12-bit JPEG" would read as a missing
    codec when a better decoder found the stream damaged."""
    for exc in errors:
        if "does not support" not in str(exc):
            return exc
    return errors[0]


def _from_file(
    path: str, frames: list[int | None], plan: SeriesPlan, syntax: str, plugin: str
) -> Iterator[tuple[int | None, Decoded]]:
    header = Dataset() if plan.photometric == "PALETTE COLOR" or plan.modality_lut else None
    options = {"ds_out": header, "transfer_syntax_uid": syntax, "decoding_plugin": plugin}
    with ClampedFile(path) as file:
        if len(frames) == 1:
            array = pixel_array(file, index=frames[0], **options)
            yield frames[0], _to_display(array, plan, header, path)
            return
        wanted = set(frames)
        for index, array in enumerate(iter_pixels(file, **options)):
            if index in wanted:
                yield index, _to_display(array, plan, header, path)


def _from_dataset(
    path: str, frames: list[int | None], plan: SeriesPlan, syntax: str, plugin: str
) -> Iterator[tuple[int | None, Decoded]]:
    if syntax == pydicom.uid.DeflatedExplicitVRLittleEndian:
        ds = read_deflated_dataset(path)  # pydicom would inflate all of it, however large
    else:
        with ClampedFile(path) as file:
            ds = pydicom.dcmread(file, force=True)
    if not getattr(ds, "file_meta", None) or "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta = ds.file_meta if getattr(ds, "file_meta", None) else FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = syntax
    for index in frames:
        yield (
            index,
            _to_display(pixel_array(ds, index=index, decoding_plugin=plugin), plan, ds, path),
        )


def _decode_reason(path: str, exc: BaseException) -> str:
    """Prefer what a header check finds (truncation, damage) to a decoder's complaint."""
    try:
        read_header(path)
    except VolumeReadError as problem:
        return problem.reason
    except Exception:
        pass
    return pixel_reason(exc)


def _to_display(array: np.ndarray, plan: SeriesPlan, header: Dataset | None, path: str) -> Decoded:
    """Colour to RGB uint8; grey through the Modality LUT (rescale comes later, per slice)."""
    if plan.photometric == "PALETTE COLOR" and header is not None:
        rgb = apply_color_lut(array, header)
        # 16-bit palette entries hold 16-bit values, except from writers that store 8-bit
        # values in them; scale only the former.
        if rgb.dtype.itemsize > 1 and rgb.max() > 255:
            rgb = rgb >> 8
        rgb = rgb.astype(np.uint8)
        return Decoded(rgb, 0.0, 255.0)
    if array.ndim == 3:
        return Decoded(_rgb_uint8(array, plan.bits_stored), 0.0, 255.0)
    if plan.modality_lut and header is not None and header.get("ModalityLUTSequence"):
        array = apply_modality_lut(array, header)
    if array.size == 0:
        raise VolumeReadError(path, "its pixel data is empty")
    if array.dtype.kind == "f":  # float pixel data may hold NaN where there is no value
        return Decoded(array, float(np.nanmin(array)), float(np.nanmax(array)))
    return Decoded(array, float(array.min()), float(array.max()))


def _rgb_uint8(array: np.ndarray, bits_stored: int) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind == "f":
        return np.clip(array, 0, 255).astype(np.uint8)
    shift = max(0, min(bits_stored, array.dtype.itemsize * 8) - 8)
    return np.clip(array.astype(np.int64) >> shift, 0, 255).astype(np.uint8)


# -- stored values to voxels -----------------------------------------------------------------


def voxel_dtype(plan: SeriesPlan, decoded: list[Decoded]) -> np.dtype:
    """The most compact type that holds every rescaled value exactly."""
    if plan.photometric == "PALETTE COLOR" or plan.samples == 3:
        return np.dtype(np.uint8)
    kinds = {d.array.dtype.kind for d in decoded}
    exact = all(
        slope == 1.0 and float(intercept).is_integer() for slope, intercept in plan.rescales
    )
    if "f" in kinds or not exact:
        return np.dtype(np.float32)
    low, high = rescaled_range(plan, decoded)
    no_shift = all(intercept == 0 for _, intercept in plan.rescales)
    if all(d.array.dtype == np.uint8 for d in decoded) and no_shift:
        return np.dtype(np.uint8)
    for candidate in (np.int16, np.uint16):
        info = np.iinfo(candidate)
        if info.min <= low and high <= info.max:
            return np.dtype(candidate)
    return np.dtype(np.float32)


def rescaled_range(plan: SeriesPlan, decoded: list[Decoded]) -> tuple[float, float]:
    lows, highs = [], []
    for (slope, intercept), item in zip(plan.rescales, decoded, strict=True):
        ends = (item.low * slope + intercept, item.high * slope + intercept)
        lows.append(min(ends))
        highs.append(max(ends))
    return min(lows), max(highs)


def fill_slice(out: np.ndarray, array: np.ndarray, rescale: tuple[float, float]) -> None:
    """Write one slice's rescaled values into ``out`` (a slice of the voxel array)."""
    slope, intercept = rescale
    if out.dtype.kind == "f":
        values = array.astype(np.float32, copy=False)
        if slope != 1.0 or intercept != 0.0:
            values = values * np.float32(slope) + np.float32(intercept)
        out[...] = values
        return
    # Integer voxels: modular arithmetic in the voxel type. The cast may wrap and the intercept
    # wraps back; `voxel_dtype` checked that the true results fit, so they come out exact.
    out[...] = array
    if intercept:
        np.add(out, _wrapped(int(intercept), out.dtype), out=out)


def invert(voxels: np.ndarray, low: float, high: float) -> None:
    """MONOCHROME1: higher stored values are darker; flip in place to ``low + high - value``."""
    if voxels.dtype.kind == "f":
        np.subtract(np.float32(low + high), voxels, out=voxels)
        return
    np.negative(voxels, out=voxels)
    np.add(voxels, _wrapped(int(low + high), voxels.dtype), out=voxels)


def _wrapped(number: int, dtype: np.dtype) -> np.ndarray:
    """``number`` modulo 2**bits, as a scalar array of ``dtype`` (for modular arithmetic)."""
    bits = np.dtype(dtype).itemsize * 8
    return np.array(number % (1 << bits), dtype=np.uint64).astype(dtype)
