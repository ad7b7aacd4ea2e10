"""DICOM reading: scan files into series, load a series into a `Volume`, list a file's tags.

A scan reads headers only; `load_dicom` decodes the pixels of one scanned series. Every failure
on a file comes out as `VolumeReadError` (or `UnsupportedImageError` for a DICOM file without
an image), naming the file and the cause; nothing patient-related goes into messages or logs.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from birdview.core.errors import VolumeReadError
from birdview.core.io._dicom_file import looks_like_dicom, read_header
from birdview.core.io._dicom_header import scan_file
from birdview.core.io._dicom_pixels import (
    Decoded,
    codec_problem,
    decode_file,
    fill_slice,
    invert,
    rescaled_range,
    voxel_dtype,
)
from birdview.core.io._dicom_series import SeriesPlan, build_entries
from birdview.core.io._dicom_tags import TagRow, dicom_tag_rows
from birdview.core.io._dicom_values import text, value
from birdview.core.io._limits import check_fits
from birdview.core.io._paths import is_inside, safe_parts, walk_files
from birdview.core.io.catalog import (
    CancelFn,
    ProgressFn,
    ReadProblem,
    SeriesEntry,
    check_cancel,
)
from birdview.core.volume import Volume

__all__ = [
    "TagRow",
    "dicom_tag_rows",
    "load_dicom",
    "looks_like_dicom",
    "read_dicom_slice",
    "read_dicomdir",
    "scan_dicom",
]

logger = logging.getLogger(__name__)

_IMAGE_RECORDS = {"IMAGE", "RT DOSE"}
_EMPTY = np.empty(0)


def read_dicomdir(path: str) -> list[str]:
    """Absolute paths of the image files a DICOMDIR references, in directory order.

    Raises:
        VolumeReadError: the DICOMDIR cannot be read or has no directory records.
    """
    ds, _ = read_header(path)
    records = value(ds, "DirectoryRecordSequence")
    if records is None:
        raise VolumeReadError(path, "it is not a DICOMDIR (it has no directory records)")
    root = os.path.dirname(os.path.abspath(path))
    found = []
    for record in records:
        file_id = value(record, "ReferencedFileID")
        if text(record, "DirectoryRecordType").upper() not in _IMAGE_RECORDS or not file_id:
            continue
        parts = safe_parts([file_id] if isinstance(file_id, str) else list(file_id))
        # A record may not point outside the DICOMDIR's folder.
        if parts and is_inside(root, path := _resolve_case(root, parts)):
            found.append(path)
    return list(dict.fromkeys(found))


def _resolve_case(root: str, parts: list[str]) -> str:
    """DICOMDIR names are upper case; a copy off a CD may have them in lower case."""
    path = os.path.join(root, *parts)
    if os.path.exists(path):
        return path
    current = root
    for part in parts:
        try:
            names = {name.upper(): name for name in os.listdir(current)}
        except OSError:
            return path
        if part.upper() not in names:
            return path
        current = os.path.join(current, names[part.upper()])
    return current


def scan_dicom(
    paths: Sequence[str], *, cancel: CancelFn | None = None
) -> tuple[list[SeriesEntry], list[ReadProblem]]:
    """Read the headers of ``paths`` (files, or folders to walk) and group them into series.

    Files that are not DICOM, cannot be read, or hold no image become `ReadProblem`s; the
    scan goes on. Slices are sorted along their normal; gaps, uneven spacing, tilt and
    duplicates are reported in each entry's ``warnings``.

    Raises:
        LoadCancelled: ``cancel`` returned True.
    """
    started = time.perf_counter()
    headers, problems = [], []
    for path in _expand(paths, problems, cancel):
        check_cancel(cancel)
        try:
            headers.append(scan_file(path))
        except VolumeReadError as exc:
            problems.append(ReadProblem(path, str(exc)))
    entries = build_entries(headers)
    logger.info(
        "scanned %d DICOM file(s) in %.3f s: %d series, %d problem(s)",
        len(headers) + len(problems), time.perf_counter() - started, len(entries), len(problems),
    )  # fmt: skip
    return entries, problems


def _expand(
    paths: Sequence[str], problems: list[ReadProblem], cancel: CancelFn | None
) -> list[str]:
    files = []
    for path in paths:
        if os.path.isdir(path):
            found = walk_files(path, problems, cancel=cancel)
            files += [name for name in found if not os.path.basename(name).startswith(".")]
        else:
            files.append(path)
    return list(dict.fromkeys(os.path.abspath(path) for path in files))


def load_dicom(
    entry: SeriesEntry, *, progress: ProgressFn | None = None, cancel: CancelFn | None = None
) -> Volume:
    """Decode the series ``entry`` (from `scan_dicom`) into a `Volume`.

    Values are rescaled (Hounsfield units for CT), MONOCHROME1 is inverted, colour becomes
    RGB uint8. ``progress(done, total)`` is called per slice.

    Raises:
        VolumeReadError: a file is gone, damaged, needs a missing codec, or disagrees with
            the rest of the series.
        LoadCancelled: ``cancel`` returned True.
    """
    plan = _plan_of(entry)
    started = time.perf_counter()
    _check_codecs(plan)
    _check_memory(plan)
    decoded = _decode_all(plan, progress, cancel)
    voxels = _voxels(plan, decoded)
    window = _window(plan, decoded)
    volume = Volume(
        voxels=voxels,
        spacing_mm=plan.spacing_mm,
        origin_lps_mm=plan.origin_lps_mm,
        direction=np.array(plan.direction).reshape(3, 3),
        modality=plan.modality,
        window=window,
        metadata=dict(plan.metadata),
        sources=plan.sources,
        warnings=plan.warnings,
        has_geometry=plan.has_geometry,
        series_uid=plan.series_uid,
    )
    logger.info(
        "loaded DICOM series %s: shape %s %s in %.3f s",
        entry.key, voxels.shape, voxels.dtype, time.perf_counter() - started,
    )  # fmt: skip
    return volume


def read_dicom_slice(entry: SeriesEntry, index: int) -> np.ndarray:
    """Slice ``index`` of a scanned series, converted like `load_dicom` would, but alone.

    MONOCHROME1 is inverted over this slice's own range, so a multi-slice MONOCHROME1 series
    may differ from the loaded volume by an offset.

    Raises:
        IndexError: ``index`` is not a slice of the entry.
        VolumeReadError: as for `load_dicom`.
    """
    plan = _plan_of(entry)
    if not 0 <= index < len(plan.sources):
        raise IndexError(
            f"Unable to read slice {index} as the series has {len(plan.sources)} slices"
        )
    source = plan.sources[index]
    _check_codecs(
        replace(plan, transfer_syntaxes=(plan.transfer_syntaxes[index],), sources=(source,))
    )
    one = replace(plan, sources=(source,), rescales=(plan.rescales[index],))
    syntax, offset = plan.transfer_syntaxes[index], plan.pixel_offsets[index]
    frames = list(decode_file(source.path, [source.frame], one, syntax, offset))
    if not frames:
        raise VolumeReadError(source.path, f"frame {source.frame} is missing from its pixel data")
    return _voxels(one, [frames[0][1]])[0]


def _plan_of(entry: SeriesEntry) -> SeriesPlan:
    if entry.kind != "dicom" or not isinstance(entry.reader_data, SeriesPlan):
        raise ValueError(
            f"Unable to load the entry as it was not made by scan_dicom (kind {entry.kind!r})"
        )
    return entry.reader_data


def _check_codecs(plan: SeriesPlan) -> None:
    checked: set[str] = set()
    for syntax, source in zip(plan.transfer_syntaxes, plan.sources, strict=True):
        if syntax not in checked:
            checked.add(syntax)
            problem = codec_problem(syntax)
            if problem:
                raise VolumeReadError(source.path, problem)


def _check_memory(plan: SeriesPlan) -> None:
    """Refuse up front what cannot fit, rather than fail (or swap) half way.

    While a series loads, its decoded frames (stored values) and the voxel array (up to
    float32) are both held.
    """
    colour = plan.samples == 3 or plan.photometric == "PALETTE COLOR"
    stored = 3 if colour else 1 if plan.bits_stored <= 8 else 2 if plan.bits_stored <= 16 else 4
    voxel_bytes = 3 if colour else 4  # RGB uint8; grey at most float32
    needed = len(plan.sources) * plan.rows * plan.cols * (stored + voxel_bytes)
    check_fits(
        plan.sources[0].path,
        needed,
        f"the series' {len(plan.sources)} slices of {plan.rows}×{plan.cols} pixels",
    )


def _decode_all(
    plan: SeriesPlan, progress: ProgressFn | None, cancel: CancelFn | None
) -> list[Decoded]:
    """Decode every slice, file by file, and return them in slice order.

    One thread: the decoders pydicom uses here (gdcm, pylibjpeg's openjpeg and libjpeg) all
    hold the GIL while they decode, and a thread pool measured no faster.
    """
    slots: dict[str, dict[int | None, int]] = {}
    layout: dict[str, tuple[str, int]] = {}  # per file: transfer syntax, pixel data offset
    for slot, source in enumerate(plan.sources):
        slots.setdefault(source.path, {})[source.frame] = slot
        layout[source.path] = (plan.transfer_syntaxes[slot], plan.pixel_offsets[slot])
    decoded: list[Decoded | None] = [None] * len(plan.sources)
    done = 0
    for path, frames in slots.items():
        check_cancel(cancel)
        for frame, item in decode_file(path, list(frames), plan, *layout[path]):
            slot = frames[frame]
            _check_size(plan, path, slot, item)
            decoded[slot] = item
            done += 1
            if progress is not None:
                progress(done, len(decoded))
            check_cancel(cancel)
    return _all_present(plan, decoded)


def _check_size(plan: SeriesPlan, path: str, slot: int, item: Decoded) -> None:
    rows, cols = item.array.shape[:2]
    colour = item.array.ndim == 3
    want_colour = plan.samples == 3 or plan.photometric == "PALETTE COLOR"
    if (rows, cols) != (plan.rows, plan.cols) or colour != want_colour:
        kind = "colour" if colour else "grey"
        raise VolumeReadError(
            path,
            f"the series is inconsistent: slice {slot + 1} is a {rows}×{cols} {kind} image "
            f"but slice 1 is {plan.rows}×{plan.cols}",
        )


def _all_present(plan: SeriesPlan, decoded: list[Decoded | None]) -> list[Decoded]:
    for slot, item in enumerate(decoded):
        if item is None:
            source = plan.sources[slot]
            raise VolumeReadError(
                source.path,
                f"frame {source.frame} is missing (the file holds fewer frames than it says)",
            )
    return decoded  # type: ignore[return-value]


def _voxels(plan: SeriesPlan, decoded: list[Decoded]) -> np.ndarray:
    """Stack the slices in the most compact type that holds their rescaled values."""
    dtype = voxel_dtype(plan, decoded)
    first = decoded[0].array
    shape = (len(decoded), *first.shape)
    voxels = np.empty(shape, dtype=dtype)
    for index, item in enumerate(decoded):
        if dtype == np.uint8 and item.array.ndim == 3:
            voxels[index] = item.array
        else:
            fill_slice(voxels[index], item.array, plan.rescales[index])
        decoded[index] = Decoded(_EMPTY, item.low, item.high)  # release it as we go
    if plan.photometric == "MONOCHROME1" and voxels.ndim == 3:
        low, high = rescaled_range(plan, decoded)
        invert(voxels, low, high)
    return voxels


def _window(plan: SeriesPlan, decoded: list[Decoded]) -> tuple[float, float] | None:
    """The middle slice's header window, in the units of the voxels."""
    if plan.samples == 3 or plan.photometric == "PALETTE COLOR":
        return None
    window = plan.windows[len(plan.windows) // 2]
    if window is not None and plan.photometric == "MONOCHROME1":
        low, high = rescaled_range(plan, decoded)
        window = (low + high - window[0], window[1])  # the voxels were flipped
    return window
