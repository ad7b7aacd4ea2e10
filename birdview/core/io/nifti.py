"""NIfTI-1 files (.nii, .nii.gz) read with nibabel, which is imported only when used.

The header is interpreted as ITK's NiftiImageIO does (`_nifti_header`), so origin and direction
are in DICOM's LPS frame and every file keeps the geometry SimpleITK gave it before BirdView
stopped shipping SimpleITK; the viewer reorders axes with `geometry.to_canonical`. Corrupt
headers are caught before any pixel is read: dimensions that would need more memory than
`MAX_VOXEL_BYTES`, or more bytes than the file can hold, are refused, and a .nii.gz whose gzip
stream is cut short is refused too rather than shown with zeros in place of the lost slices.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import re
import time
import warnings
import zlib
from dataclasses import dataclass

import numpy as np

from birdview.core.errors import UnsupportedImageError, VolumeReadError
from birdview.core.io._limits import check_fits, check_regular_file
from birdview.core.io._nifti_header import HEADER_BYTES, HeaderError, NiftiHeader, parse_header
from birdview.core.io.catalog import CancelFn, ProgressFn, SeriesEntry, check_cancel
from birdview.core.volume import SliceSource, Volume, short_id

__all__ = ["MAX_VOXEL_BYTES", "NIFTI_SUFFIXES", "load_nifti", "scan_nifti"]

logger = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii", ".nii.gz")

# The most memory one volume may take; larger headers are taken to be corrupt.
MAX_VOXEL_BYTES = 4 * 1024**3

# Deflate cannot expand data by more than about 1032:1, so a .nii.gz cannot hold more.
_MAX_DEFLATE_RATIO = 1032

# Hounsfield units: air is about -1000, and scanners pad outside the field of view with
# values down to about -3024. An image reaching this low is CT.
_HU_MINIMUM_RANGE = (-3100.0, -500.0)

# A label map: integer values >= 0, no more distinct values than this (TotalSegmentator's
# largest task has 117 classes).
_LABEL_MAP_MAX_VALUES = 128

_MR_WORDS = {"mr", "mri", "t1", "t2", "t1w", "t2w", "t1c", "t1ce", "t1gd", "flair", "dwi", "adc"}


@dataclass(frozen=True)
class _Layout:
    """What the header says about the first volume of the file."""

    header: NiftiHeader
    warnings: tuple[str, ...]

    @property
    def size(self) -> tuple[int, ...]:  # as ITK reports it: (x, y[, z[, t...]])
        return self.header.size

    @property
    def components(self) -> int:
        return self.header.components

    @property
    def n_slices(self) -> int:
        return self.size[2] if len(self.size) >= 3 else 1


# -- public ---------------------------------------------------------------------------------


def scan_nifti(path: str) -> SeriesEntry:
    """Read the header of a NIfTI file into a catalog entry.

    Raises:
        VolumeReadError: the file is missing, not NIfTI-1, or its header is damaged.
    """
    path = os.fspath(path)
    layout = _checked_layout(path, _read_header(path))
    name = os.path.basename(path)
    return SeriesEntry(
        kind="nifti",
        key=short_id(os.path.abspath(path)),
        patient="",
        study="",
        description=name,
        modality=_modality_from_name(name, ct_word=True),
        n_slices=layout.n_slices,
        paths=(path,),
        warnings=layout.warnings,
    )


def load_nifti(
    entry: SeriesEntry,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> Volume:
    """Read the first volume of a NIfTI file, with its LPS geometry.

    Raises:
        VolumeReadError: the file cannot be read, is truncated or its header is damaged.
        UnsupportedImageError: the pixels are of a kind BirdView cannot show (complex).
        LoadCancelled: ``cancel()`` returned True.
    """
    path = entry.paths[0]
    started = time.perf_counter()
    check_cancel(cancel)
    if progress is not None:
        progress(0, 1)
    layout = _checked_layout(path, _read_header(path), verify_gzip=True)
    try:
        voxels = _read_first_volume(path, layout.header)
    except MemoryError as exc:
        raise VolumeReadError(path, "there is not enough memory for its pixels") from exc
    check_cancel(cancel)
    volume = _build_volume(path, voxels, layout)
    if progress is not None:
        progress(1, 1)
    seconds = time.perf_counter() - started
    logger.info("read NIfTI %s: %r in %.2f s", volume.short_id, volume, seconds)
    return volume


# -- header ---------------------------------------------------------------------------------


def _read_header(path: str) -> NiftiHeader:
    check_regular_file(path)  # opening a named pipe would wait forever
    try:
        with _open_stream(path) as stream:
            raw = stream.read(HEADER_BYTES)
    except EOFError as exc:
        raise VolumeReadError(
            path, "the gzip stream is truncated (the file was cut short)"
        ) from exc
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise VolumeReadError(path, f"the gzip stream is damaged ({_gist(exc)})") from exc
    except OSError as exc:
        raise VolumeReadError(path, f"it could not be read ({exc.strerror})") from exc
    try:
        return parse_header(raw)
    except HeaderError as exc:
        error = UnsupportedImageError if exc.unsupported else VolumeReadError
        raise error(path, exc.reason) from exc


def _open_stream(path: str):
    """The file's bytes, decompressed if it is gzip: niftilib goes by content, not name."""
    with open(path, "rb") as raw:
        magic = raw.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def _gist(exc: BaseException) -> str:
    """A gzip or zlib error's message on one line (they name no file, which could name the
    patient)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def _checked_layout(path: str, header: NiftiHeader, *, verify_gzip: bool = False) -> _Layout:
    """The header's layout, once it is known to fit in memory and in the file.

    ``verify_gzip`` also makes sure a .nii.gz is complete, which may mean decompressing it:
    worth it before a load, too slow for a scan of a folder.
    """
    size = header.size
    bytes_per_value = header.out_dtype.itemsize
    first_volume = math.prod(size[:3]) * header.components * bytes_per_value
    if min(size) < 1 or first_volume > MAX_VOXEL_BYTES:
        raise VolumeReadError(
            path,
            f"its header gives dimensions {'×'.join(map(str, size))}, which need "
            f"{first_volume / 1024**3:.1f} GiB, more than the {MAX_VOXEL_BYTES / 1024**3:.0f} GiB "
            "limit; the header is probably damaged",
        )
    if verify_gzip:  # before a load: the voxels, and the stored values they are scaled from
        check_fits(path, 2 * first_volume, f"its {'×'.join(map(str, size[:3]))} voxels")
    _check_file_holds_data(path, header, verify_gzip)
    return _Layout(header, _layout_warnings(header))


def _check_file_holds_data(path: str, header: NiftiHeader, verify_gzip: bool) -> None:
    """Refuse headers that claim more pixel data than the file has."""
    offset = header.vox_offset
    if not math.isfinite(offset) or offset < 0:
        raise VolumeReadError(path, f"its header gives an invalid data offset {offset!r}")
    needed = int(offset) + _stored_bytes(header)
    file_bytes = os.path.getsize(path)
    lower = path.lower()
    if lower.endswith(".nii.gz"):
        if needed > _MAX_DEFLATE_RATIO * file_bytes:
            raise VolumeReadError(
                path,
                f"its header claims {needed} bytes of data, more than a {file_bytes}-byte gzip "
                "file can hold; the header is damaged",
            )
        if verify_gzip:
            _check_gzip_complete(path, needed)
    elif lower.endswith(".nii") and file_bytes < needed:
        raise VolumeReadError(
            path, f"the file is truncated: the header needs {needed} bytes and it has {file_bytes}"
        )


def _stored_bytes(header: NiftiHeader) -> int:
    """Bytes of pixel data in the file, from the header's own dim and bitpix (the pixel type
    shown can differ: scaled integers come out as float)."""
    rank, bits = header.dim[0], header.bitpix
    if not 1 <= rank <= 7 or bits <= 0:
        return math.prod(header.size) * header.components * header.disk_dtype.itemsize
    return math.prod(max(n, 1) for n in header.dim[1 : rank + 1]) * bits // 8


def _check_gzip_complete(path: str, needed: int) -> None:
    """A cut-short .nii.gz must be refused, not shown with zeros for the lost slices."""
    with open(path, "rb") as stream:
        stream.seek(-4, os.SEEK_END)
        stored_size = int.from_bytes(stream.read(4), "little")
    if stored_size == needed % 2**32:
        return  # the gzip trailer records exactly the expected length: the stream is whole
    # Multi-member gzip files (bgzip) or extra trailing bytes end otherwise; decompress to know.
    total = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(1 << 22):
                total += len(chunk)
    except EOFError as exc:
        raise VolumeReadError(
            path, "the gzip stream is truncated (the file was cut short)"
        ) from exc
    except (OSError, zlib.error) as exc:
        raise VolumeReadError(path, f"the gzip stream is damaged ({exc})") from exc
    if total < needed:
        raise VolumeReadError(
            path, f"the file is truncated: the header needs {needed} bytes and it holds {total}"
        )


def _layout_warnings(header: NiftiHeader) -> tuple[str, ...]:
    size, components = header.size, header.components
    notes = []
    if len(size) > 3 and math.prod(size[3:]) > 1:
        notes.append(f"the file holds {math.prod(size[3:])} volumes; showing the first")
    if components > 1 and components != 3:
        notes.append(f"the file holds {components} values per voxel; showing the first")
    if header.qform_code == 0 and header.sform_code == 0:
        notes.append(
            "the header sets no orientation (qform_code and sform_code are 0); "
            "the orientation shown is a guess"
        )
    return tuple(notes)


# -- pixels ---------------------------------------------------------------------------------


def _read_first_volume(path: str, header: NiftiHeader) -> np.ndarray:
    """The first volume's values as SimpleITK arranged them: (z, y, x) or (y, x), with a last
    axis of values per voxel when there are several."""
    from nibabel.volumeutils import array_from_file

    grid = header.size[:3]
    if header.interleaved:  # RGB(A): the values of one voxel are stored together
        starts, shape = [0], (header.components, *grid)
    else:  # vectors: one whole series of volumes per value, volume after volume
        per_value = math.prod(max(n, 1) for n in header.dim[1:5]) * header.disk_dtype.itemsize
        starts, shape = [c * per_value for c in range(header.components)], grid
    blocks = []
    try:
        with _open_stream(path) as stream:
            for start in starts:
                offset = int(header.vox_offset) + start
                block = array_from_file(shape, header.disk_dtype, stream, offset, mmap=False)
                blocks.append(block.T)  # Fortran order on disk: transposed, it is (z, y, x)
            if isinstance(stream, gzip.GzipFile):
                # Read to the end so that gzip checks its CRC: a damaged deflate stream can
                # still inflate, to wrong values, and the checksum is the only way to know.
                while stream.read(1 << 22):
                    pass
    except EOFError as exc:
        raise VolumeReadError(
            path, "the gzip stream is truncated (the file was cut short)"
        ) from exc
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise VolumeReadError(path, f"the gzip stream is damaged ({_gist(exc)})") from exc
    except OSError as exc:  # nibabel's short read; its message names the file, so not quoted
        raise VolumeReadError(path, "the file is truncated: its pixel data end early") from exc
    voxels = blocks[0] if len(blocks) == 1 else np.stack(blocks, axis=-1)
    voxels = np.ascontiguousarray(voxels, dtype=header.disk_dtype.newbyteorder("="))
    if voxels.dtype.kind == "f":  # niftilib stores NaN and infinite values as 0
        voxels[~np.isfinite(voxels)] = 0
    return _rescale(voxels, header) if header.rescaled else voxels


def _rescale(voxels: np.ndarray, header: NiftiHeader) -> np.ndarray:
    """scl_slope and scl_inter applied as ITK applies them: integers are first cast to
    float32, then each value is scaled in double precision and stored back, a slab at a time
    so that no float64 copy of the whole volume is made."""
    out = voxels.astype(header.out_dtype, copy=False)
    flat = out.reshape(-1)
    step = 1 << 22
    for start in range(0, flat.size, step):
        chunk = flat[start : start + step]
        chunk[...] = chunk.astype(np.float64) * header.slope + header.inter
    return out


def _build_volume(path: str, voxels: np.ndarray, layout: _Layout) -> Volume:
    notes = list(layout.warnings)
    if layout.components > 1:
        rgb = layout.components == 3 and voxels.dtype == np.uint8
        if not rgb:
            voxels = voxels[..., 0]
        elif voxels.ndim == 3:  # a 2D colour image: (rows, cols, 3)
            voxels = voxels[np.newaxis]
    spacing, origin, direction, has_geometry = _geometry(layout.header, notes)
    name = os.path.basename(path)
    modality, flags = _classify(voxels, name)
    n_slices = voxels.shape[0] if voxels.ndim >= 3 else 1
    try:
        return Volume(
            voxels=voxels,
            spacing_mm=spacing,
            origin_lps_mm=origin,
            direction=direction,
            modality=modality,
            window=None,
            metadata={"series_description": name, **flags},
            sources=tuple(SliceSource(path, frame=k) for k in range(n_slices)),
            warnings=tuple(notes),
            has_geometry=has_geometry,
        )
    except ValueError as exc:
        raise VolumeReadError(path, f"its pixel data do not form an image ({exc})") from exc


def _geometry(header: NiftiHeader, notes: list[str]) -> tuple[tuple, tuple, np.ndarray, bool]:
    """Spacing, origin and direction padded to 3D; header nonsense replaced by defaults."""
    dim = len(header.origin)
    spacing = [*header.spacing, 1.0, 1.0][:3]
    origin = [*header.origin, 0.0, 0.0][:3]
    direction = np.eye(3)
    direction[:dim, :dim] = header.direction
    if not all(math.isfinite(s) and s > 0 for s in spacing):
        notes.append(f"the header's voxel size {tuple(spacing)!r} is invalid; 1 mm assumed")
        spacing = [1.0, 1.0, 1.0]
    usable = np.all(np.isfinite(direction)) and abs(np.linalg.det(direction)) > 1e-6
    if not usable or not all(math.isfinite(v) for v in origin):
        notes.append("the header's orientation is invalid; the image is shown unoriented")
        return tuple(spacing), (0.0, 0.0, 0.0), np.eye(3), False
    return tuple(spacing), tuple(origin), direction, True


def _classify(voxels: np.ndarray, name: str) -> tuple[str, dict[str, str]]:
    """Modality and flags from the values: Hounsfield range → CT; few integers ≥ 0 → label map."""
    flags: dict[str, str] = {}
    if voxels.ndim == 4 or voxels.dtype.kind not in "iuf":
        return _modality_from_name(name), flags
    sample = voxels.reshape(-1)
    if sample.size > 2_000_000:  # distinct values and range are stable on a large sample
        sample = sample[:: sample.size // 1_000_000]
    with warnings.catch_warnings():  # an all-NaN image has no minimum; it is simply not CT
        warnings.simplefilter("ignore", RuntimeWarning)
        minimum = float(np.nanmin(sample)) if voxels.dtype.kind == "f" else float(sample.min())
    if voxels.dtype.kind in "iu" and minimum >= 0:
        if len(np.unique(sample)) <= _LABEL_MAP_MAX_VALUES:
            flags["label_map"] = "true"
    if _HU_MINIMUM_RANGE[0] <= minimum <= _HU_MINIMUM_RANGE[1]:
        flags["modality_guessed"] = "true"
        return "CT", flags
    return _modality_from_name(name), flags


def _modality_from_name(name: str, *, ct_word: bool = False) -> str:
    """MR when the file name says so; CT too when ``ct_word`` (scans cannot see the values)."""
    words = set(re.split(r"[^a-z0-9]+", name.lower()))
    if words & _MR_WORDS:
        return "MR"
    if ct_word and "ct" in words:
        return "CT"
    return "OT"


# -- errors ---------------------------------------------------------------------------------
