"""NIfTI-1 files (.nii, .nii.gz) read through SimpleITK, which is imported only when used.

SimpleITK already reports origin and direction in DICOM's LPS frame, so the geometry is kept as
the file states it (the viewer reorders axes with `geometry.to_canonical`). Corrupt headers are
caught before any pixel is read: dimensions that would need more memory than
`MAX_VOXEL_BYTES`, or more bytes than the file can hold, are refused, and a .nii.gz whose gzip
stream is cut short is refused too, because SimpleITK silently pads such files with zeros.
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
from typing import TYPE_CHECKING, Any

import numpy as np

from birdview.core.errors import UnsupportedImageError, VolumeReadError
from birdview.core.io._limits import check_fits, check_regular_file
from birdview.core.io.catalog import CancelFn, ProgressFn, SeriesEntry, check_cancel
from birdview.core.volume import SliceSource, Volume, short_id

if TYPE_CHECKING:
    import SimpleITK

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

    size: tuple[int, ...]  # as SimpleITK reports it: (x, y[, z[, t...]])
    components: int
    warnings: tuple[str, ...]

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
    reader = _open_reader(path)
    layout = _checked_layout(path, reader)
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
    import SimpleITK as sitk

    path = entry.paths[0]
    started = time.perf_counter()
    check_cancel(cancel)
    if progress is not None:
        progress(0, 1)
    reader = _open_reader(path)
    layout = _checked_layout(path, reader, verify_gzip=True)
    if len(layout.size) > 3:
        # Collapse time (and further) axes to their first element.
        reader.SetExtractSize([*layout.size[:3], *([0] * (len(layout.size) - 3))])
        reader.SetExtractIndex([0] * len(layout.size))
    try:
        image = reader.Execute()
        voxels = sitk.GetArrayFromImage(image)
    except RuntimeError as exc:
        raise VolumeReadError(path, _sitk_reason(path, exc)) from exc
    except MemoryError as exc:
        raise VolumeReadError(path, "there is not enough memory for its pixels") from exc
    check_cancel(cancel)
    volume = _build_volume(path, image, voxels, layout)
    if progress is not None:
        progress(1, 1)
    seconds = time.perf_counter() - started
    logger.info("read NIfTI %s: %r in %.2f s", volume.short_id, volume, seconds)
    return volume


# -- header ---------------------------------------------------------------------------------


def _open_reader(path: str) -> SimpleITK.ImageFileReader:
    import SimpleITK as sitk

    check_regular_file(path)  # SimpleITK would wait forever on a named pipe
    reader = sitk.ImageFileReader()
    reader.SetImageIO("NiftiImageIO")
    reader.SetFileName(path)
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise VolumeReadError(path, _sitk_reason(path, exc)) from exc
    return reader


def _checked_layout(
    path: str, reader: SimpleITK.ImageFileReader, *, verify_gzip: bool = False
) -> _Layout:
    """The header's layout, once it is known to fit in memory and in the file.

    ``verify_gzip`` also makes sure a .nii.gz is complete, which may mean decompressing it:
    worth it before a load, too slow for a scan of a folder.
    """
    import SimpleITK as sitk

    size = tuple(int(n) for n in reader.GetSize())
    components = int(reader.GetNumberOfComponents())
    pixel_type = sitk.GetPixelIDValueAsString(reader.GetPixelID())
    if "complex" in pixel_type:
        raise UnsupportedImageError(path, f"its pixels are complex numbers ({pixel_type})")
    bytes_per_value = _bytes_per_value(pixel_type)
    first_volume = math.prod(size[:3]) * components * bytes_per_value
    if min(size) < 1 or first_volume > MAX_VOXEL_BYTES:
        raise VolumeReadError(
            path,
            f"its header gives dimensions {'×'.join(map(str, size))}, which need "
            f"{first_volume / 1024**3:.1f} GiB, more than the {MAX_VOXEL_BYTES / 1024**3:.0f} GiB "
            "limit; the header is probably damaged",
        )
    if verify_gzip:  # before a load: the voxels, and SimpleITK's image they are copied from
        check_fits(path, 2 * first_volume, f"its {'×'.join(map(str, size[:3]))} voxels")
    _check_file_holds_data(path, reader, size, components * bytes_per_value, verify_gzip)
    return _Layout(size, components, _layout_warnings(reader, size, components))


def _bytes_per_value(pixel_type: str) -> int:
    match = re.search(r"(\d+)-bit", pixel_type)
    return int(match.group(1)) // 8 if match else 8


def _check_file_holds_data(
    path: str,
    reader: SimpleITK.ImageFileReader,
    size: tuple[int, ...],
    voxel_bytes: int,
    verify_gzip: bool,
) -> None:
    """Refuse headers that claim more pixel data than the file has."""
    offset = _header_number(reader, "vox_offset", 352.0)
    if not math.isfinite(offset) or offset < 0:
        raise VolumeReadError(path, f"its header gives an invalid data offset {offset!r}")
    needed = int(offset) + _stored_bytes(reader, size, voxel_bytes)
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


def _stored_bytes(
    reader: SimpleITK.ImageFileReader, size: tuple[int, ...], voxel_bytes: int
) -> int:
    """Bytes of pixel data in the file, from the header's own dim and bitpix: SimpleITK's
    pixel type can differ (scaled integers come out as float)."""
    rank = int(_header_number(reader, "dim[0]", 0))
    bits = int(_header_number(reader, "bitpix", 0))
    if not 1 <= rank <= 7 or bits <= 0:
        return math.prod(size) * voxel_bytes
    dims = [int(_header_number(reader, f"dim[{d}]", 1)) for d in range(1, rank + 1)]
    return math.prod(max(n, 1) for n in dims) * bits // 8


def _check_gzip_complete(path: str, needed: int) -> None:
    """SimpleITK pads a cut-short .nii.gz with zeros; find out before it does."""
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


def _header_number(reader: SimpleITK.ImageFileReader, key: str, default: float) -> float:
    if not reader.HasMetaDataKey(key):
        return default
    try:
        return float(reader.GetMetaData(key))
    except ValueError:
        return default


def _layout_warnings(
    reader: SimpleITK.ImageFileReader, size: tuple[int, ...], components: int
) -> tuple[str, ...]:
    notes = []
    if len(size) > 3 and math.prod(size[3:]) > 1:
        notes.append(f"the file holds {math.prod(size[3:])} volumes; showing the first")
    if components > 1 and components != 3:
        notes.append(f"the file holds {components} values per voxel; showing the first")
    if (
        _header_number(reader, "qform_code", 1) == 0
        and _header_number(reader, "sform_code", 1) == 0
    ):
        notes.append(
            "the header sets no orientation (qform_code and sform_code are 0); "
            "the orientation shown is a guess"
        )
    return tuple(notes)


# -- pixels ---------------------------------------------------------------------------------


def _build_volume(path: str, image: Any, voxels: np.ndarray, layout: _Layout) -> Volume:
    notes = list(layout.warnings)
    if layout.components > 1:
        rgb = layout.components == 3 and voxels.dtype == np.uint8
        if not rgb:
            voxels = voxels[..., 0]
        elif voxels.ndim == 3:  # a 2D colour image: (rows, cols, 3)
            voxels = voxels[np.newaxis]
    spacing, origin, direction, has_geometry = _geometry(image, notes)
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


def _geometry(image: Any, notes: list[str]) -> tuple[tuple, tuple, np.ndarray, bool]:
    """Spacing, origin and direction padded to 3D; header nonsense replaced by defaults."""
    dim = image.GetDimension()
    spacing = [*image.GetSpacing(), 1.0, 1.0][:3]
    origin = [*image.GetOrigin(), 0.0, 0.0][:3]
    direction = np.eye(3)
    direction[:dim, :dim] = np.asarray(image.GetDirection(), dtype=float).reshape(dim, dim)
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


def _sitk_reason(path: str, exc: RuntimeError) -> str:
    """The gist of a SimpleITK error (its last line, without C++ locations or the path)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    gist = lines[-1] if lines else str(exc)
    gist = re.sub(r"^.*?ERROR:\s*", "", gist)
    gist = re.sub(r"^\w+\(0x[0-9a-fA-F]+\):\s*", "", gist)
    gist = gist.replace(path, "the file").replace(os.path.basename(path), "the file")
    if "not recognized as a NIFTI file" in gist:
        return _why_not_nifti(path)
    return f"SimpleITK failed: {gist[:200]}"


def _why_not_nifti(path: str) -> str:
    """Look at the first bytes to say why NiftiImageIO refused the file."""
    try:
        with open(path, "rb") as raw:
            magic = raw.read(2)
        opener = gzip.open if magic == b"\x1f\x8b" else open
        with opener(path, "rb") as stream:
            head = stream.read(4)
    except EOFError:
        return "the gzip stream is truncated (the file was cut short)"
    except (OSError, zlib.error) as exc:
        return f"the gzip stream is damaged ({exc})"
    if not head:
        return "the file is empty"
    if len(head) == 4 and 540 in (int.from_bytes(head, "little"), int.from_bytes(head, "big")):
        return "it is a NIfTI-2 file, which SimpleITK cannot read; convert it to NIfTI-1"
    if len(head) == 4 and 348 in (int.from_bytes(head, "little"), int.from_bytes(head, "big")):
        return "its NIfTI header is damaged (invalid dimensions or data type)"
    return "it is not a NIfTI file"
