"""What a scan keeps of one DICOM file: plain values for sorting and loading.

Enhanced multi-frame files keep their geometry, rescale and window in functional groups
(per-frame first, then shared); RT Dose keeps its slice offsets in Grid Frame Offset Vector.
Both are resolved here into one `FrameInfo` per frame.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset

from birdview.core.errors import UnsupportedImageError, VolumeReadError
from birdview.core.io._dicom_file import (
    PixelElement,
    is_passthrough,
    native_frame_bits,
    read_header,
    sop_class_name,
    transfer_syntax,
)
from birdview.core.io._dicom_values import (
    as_float,
    as_int,
    first,
    floats,
    positive,
    raw,
    raw_text,
    tag_of,
    text,
    uint,
    value,
    vector,
)
from birdview.core.io._limits import check_fits, format_bytes

# The elements a scan reads; pydicom skips everything else without parsing it.
SCAN_TAGS = frozenset(
    tag_of(keyword)
    for keyword in (
        "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
        "FrameOfReferenceUID", "Modality", "SeriesNumber", "InstanceNumber", "SliceLocation",
        "SeriesDescription",
        "StudyDescription", "StudyDate", "SeriesDate", "SeriesTime", "PatientName", "PatientID",
        "BodyPartExamined", "Manufacturer", "InstitutionName", "ImagePositionPatient",
        "ImageOrientationPatient", "PixelSpacing", "ImagerPixelSpacing", "SliceThickness",
        "SpacingBetweenSlices", "Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation",
        "BitsAllocated", "BitsStored", "PixelRepresentation", "NumberOfFrames", "RescaleSlope",
        "RescaleIntercept", "ModalityLUTSequence", "WindowCenter", "WindowWidth",
        "PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence",
        "GridFrameOffsetVector", "DoseGridScaling",
    )
)  # fmt: skip

_INFO_KEYWORDS = {
    "patient_name": "PatientName",
    "patient_id": "PatientID",
    "study_date": "StudyDate",
    "study_description": "StudyDescription",
    "series_description": "SeriesDescription",
    "series_number": "SeriesNumber",
    "body_part": "BodyPartExamined",
    "manufacturer": "Manufacturer",
    "institution": "InstitutionName",
}

Vector = tuple[float, float, float]

# What a scan and a load keep per frame besides its pixels (FrameInfo, slice, source, plan
# entries): about 450 bytes measured; rounded up.
_FRAME_BOOKKEEPING_BYTES = 1024
# Frames one file may have. Bookkeeping takes about 6 µs a frame, so 2 million empty RLE
# fragments (a 16 MB file) took 13 s to scan; volumes have at most a few thousand slices.
MAX_FRAMES = 100_000


@dataclass(frozen=True)
class FrameInfo:
    """One frame of a file: None for the frame number of a single-frame file."""

    frame: int | None
    position: Vector | None
    orientation: tuple[float, ...] | None
    rescale: tuple[float, float]  # (slope, intercept)
    window: tuple[float, float] | None


@dataclass(frozen=True)
class Header:
    path: str
    series_key: str
    series_uid: str
    sop_instance: str
    instance_number: int | None
    slice_location: float | None  # (0020,1041), in mm; shown, never used for sorting
    rows: int
    cols: int
    samples: int
    photometric: str
    bits_stored: int
    transfer_syntax: str
    pixel_offset: int  # where the pixel data value starts in the file
    pixel_spacing: tuple[float, float] | None  # DICOM order: (row spacing, column spacing)
    slice_thickness: float | None
    spacing_between: float | None
    frames: tuple[FrameInfo, ...]
    modality_lut: bool
    dataset: Dataset = field(compare=False, repr=False)  # the scanned elements, for `describe`

    @property
    def is_multi_frame(self) -> bool:
        return len(self.frames) > 1


def describe(header: Header) -> dict[str, str]:
    """The display values of the header's series (asked once per series, not per file)."""
    info = {key: text(header.dataset, keyword) for key, keyword in _INFO_KEYWORDS.items()}
    info["modality"] = raw_text(header.dataset, "Modality") or "OT"
    return info


def scan_file(path: str) -> Header:
    """Read the header of one image file.

    Raises:
        UnsupportedImageError: a DICOM file without an image (SR, RT plan, DICOMDIR...).
        VolumeReadError: anything else wrong with the file.
    """
    ds, pixels = read_header(path, SCAN_TAGS)
    try:
        return _header(path, ds, pixels)
    except BaseException as exc:  # noqa: BLE001 - a value pydicom parsed that makes no sense
        if is_passthrough(exc):
            raise
        raise VolumeReadError(path, f"its header is damaged ({type(exc).__name__})") from exc


def _header(path: str, ds: Dataset, pixels: PixelElement | None) -> Header:
    rows, cols = uint(ds, "Rows"), uint(ds, "Columns")
    if pixels is None:
        _raise_no_pixels(path, ds, rows)
    _check_size(path, rows, cols)
    count = _frame_count(path, ds)
    _check_frames_fit(path, ds, count, pixels)  # type: ignore[arg-type]
    groups = _Groups(ds)
    return Header(
        path=path,
        series_key=_series_key(path, ds),
        series_uid=raw_text(ds, "SeriesInstanceUID"),
        sop_instance=raw_text(ds, "SOPInstanceUID") or _meta_instance(ds),
        instance_number=as_int(raw(ds, "InstanceNumber")),
        slice_location=as_float(raw(ds, "SliceLocation")),
        rows=rows,  # type: ignore[arg-type]
        cols=cols,  # type: ignore[arg-type]
        samples=uint(ds, "SamplesPerPixel") or 1,
        photometric=(raw_text(ds, "PhotometricInterpretation") or "MONOCHROME2").upper(),
        bits_stored=uint(ds, "BitsStored") or uint(ds, "BitsAllocated") or 8,
        transfer_syntax=transfer_syntax(ds),
        pixel_offset=pixels.value_offset,  # type: ignore[union-attr]
        pixel_spacing=_pixel_spacing(ds, groups),
        slice_thickness=positive(groups.get(0, "PixelMeasuresSequence", "SliceThickness")),
        spacing_between=positive(groups.get(0, "PixelMeasuresSequence", "SpacingBetweenSlices")),
        frames=_frames(ds, groups, count),
        modality_lut=0x00283000 in ds,  # (0028,3000) Modality LUT Sequence
        dataset=ds,
    )


def _check_size(path: str, rows: int | None, cols: int | None) -> None:
    if rows is None or cols is None:
        raise VolumeReadError(
            path,
            "it has pixel data but no image size "
            "((0028,0010) 'Rows' or (0028,0011) 'Columns' is missing)",
        )
    if rows <= 0 or cols <= 0:
        raise VolumeReadError(
            path,
            f"its image size {rows}×{cols} "
            "((0028,0010) 'Rows' × (0028,0011) 'Columns') is not valid",
        )


def _frame_count(path: str, ds: Dataset) -> int:
    raw_count = raw(ds, "NumberOfFrames")
    count = 1 if raw_count is None else as_int(raw_count)
    if count is None or count < 1:
        raise VolumeReadError(
            path, f"its (0028,0008) 'Number of Frames' value {str(raw_count)!r} is invalid"
        )
    return count


def _check_frames_fit(path: str, ds: Dataset, count: int, pixels: PixelElement) -> None:
    """Refuse a frame count the pixel data cannot hold, or the memory available cannot,
    before anything is allocated per frame."""
    rows, cols = uint(ds, "Rows") or 1, uint(ds, "Columns") or 1
    photometric = (raw_text(ds, "PhotometricInterpretation") or "").upper()
    samples = uint(ds, "SamplesPerPixel") or 1
    # Without Bits Allocated, assume the least, so that nothing is refused wrongly.
    frame_bits = native_frame_bits(rows, cols, samples, uint(ds, "BitsAllocated") or 1, photometric)
    declared = f"{_frames_text(count)} of {rows}×{cols} pixels"
    if pixels.length == 0 or pixels.fragments == 0:
        raise VolumeReadError(
            path, f"its pixel data is empty, where its header declares {declared}"
        )
    if pixels.length is not None and count * frame_bits > pixels.length * 8:
        held = pixels.length * 8 // frame_bits
        raise VolumeReadError(
            path,
            f"its header declares {declared} ({format_bytes(count * frame_bits / 8)}) but its "
            f"pixel data holds {format_bytes(pixels.length)} ({_frames_text(held)}); "
            "the header is damaged",
        )
    if pixels.fragments is not None and count > pixels.fragments:
        raise VolumeReadError(
            path,
            f"its header declares {declared} but its compressed pixel data holds "
            f"{pixels.fragments} fragment(s), and each frame needs one; the header is damaged",
        )
    if count > MAX_FRAMES:
        raise VolumeReadError(
            path, f"its header declares {count} frames, more than the {MAX_FRAMES} BirdView opens"
        )
    check_fits(path, count * (frame_bits // 8 + _FRAME_BOOKKEEPING_BYTES), f"its {declared}")


def _frames_text(count: int) -> str:
    return "1 frame" if count == 1 else f"{count} frames"


def _raise_no_pixels(path: str, ds: Dataset, rows: int | None) -> None:
    name = sop_class_name(ds)
    if rows:
        # An image (it has an image size) whose pixel data never came: the copy stopped short.
        raise VolumeReadError(
            path, f"the file is truncated (it ends before its pixel data; {name})"
        )
    raise UnsupportedImageError(
        path, f"it has no pixel data ({name}), so there is no image to show"
    )


def _series_key(path: str, ds: Dataset) -> str:
    uid = raw_text(ds, "SeriesInstanceUID")
    if uid:
        return uid
    # Without a UID, files that agree on everything that names a series, and sit in the same
    # folder, are one series. Raw bytes compare as well as decoded text here.
    keywords = (
        "StudyInstanceUID", "SeriesNumber", "Modality", "SeriesDescription", "FrameOfReferenceUID",
        "PatientID", "PatientName", "StudyDate", "SeriesDate", "SeriesTime",
    )  # fmt: skip
    parts = [str(raw(ds, keyword)) for keyword in keywords]
    return "no-uid|" + "|".join(parts) + "|" + os.path.dirname(os.path.abspath(path))


def _meta_instance(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    return text(meta, "MediaStorageSOPInstanceUID") if meta is not None else ""


class _Groups:
    """Looks values up where enhanced multi-frame files keep them: top level, then the frame's
    functional group item, then the shared one."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        self.per_frame = value(ds, "PerFrameFunctionalGroupsSequence") or []
        shared = value(ds, "SharedFunctionalGroupsSequence") or []
        self.shared = shared[0] if len(shared) else None
        self.enhanced = bool(self.per_frame) or self.shared is not None
        self._top: dict[str, Any] = {}

    def get(self, index: int, sequence: str, keyword: str) -> Any:
        if keyword not in self._top:
            self._top[keyword] = raw(self.ds, keyword)
        found = self._top[keyword]
        if found is not None or not self.enhanced:
            return found
        items = [self.per_frame[index]] if index < len(self.per_frame) else []
        for item in items + ([self.shared] if self.shared is not None else []):
            group = value(item, sequence)
            if group:
                found = value(group[0], keyword)
                if found is not None:
                    return found
        return None


def _frames(ds: Dataset, groups: _Groups, count: int) -> tuple[FrameInfo, ...]:
    if count == 1:
        return (_frame_info(groups, 0, None),)
    if groups.enhanced:
        return tuple(_frame_info(groups, index, index) for index in range(count))
    # A classic multi-frame: one set of values, and a position for the first frame only,
    # unless Grid Frame Offset Vector (RT Dose) gives each frame's distance along the normal.
    head = _frame_info(groups, 0, 0)
    offsets = floats(raw(ds, "GridFrameOffsetVector"), count)
    if offsets is not None and offsets[0] != 0:
        # PS3.3 C.8.8.3.2: a non-zero first value means the offsets are absolute positions
        # along the normal, the first being the frame at Image Position (Patient).
        offsets = tuple(offset - offsets[0] for offset in offsets)
    frames = []
    for index in range(count):
        position = None
        if offsets is not None and head.position is not None and head.orientation is not None:
            position = _offset_along_normal(head.position, head.orientation, offsets[index])
        elif index == 0:
            position = head.position
        frames.append(FrameInfo(index, position, head.orientation, head.rescale, head.window))
    return tuple(frames)


def _frame_info(groups: _Groups, index: int, frame: int | None) -> FrameInfo:
    orientation = groups.get(index, "PlaneOrientationSequence", "ImageOrientationPatient")
    return FrameInfo(
        frame=frame,
        position=vector(groups.get(index, "PlanePositionSequence", "ImagePositionPatient")),
        orientation=floats(orientation, 6),
        rescale=_rescale(groups, index),
        window=_window(groups, index),
    )


def _offset_along_normal(position: Vector, orientation: tuple[float, ...], offset: float) -> Vector:
    """RT Dose: Grid Frame Offset Vector gives each frame's distance along the normal."""
    row, col = orientation[:3], orientation[3:]
    normal = (
        row[1] * col[2] - row[2] * col[1],
        row[2] * col[0] - row[0] * col[2],
        row[0] * col[1] - row[1] * col[0],
    )
    x, y, z = (p + offset * n for p, n in zip(position, normal, strict=True))
    return (x, y, z)


def _rescale(groups: _Groups, index: int) -> tuple[float, float]:
    slope = first(groups.get(index, "PixelValueTransformationSequence", "RescaleSlope"))
    intercept = first(groups.get(index, "PixelValueTransformationSequence", "RescaleIntercept"))
    scaling = first(raw(groups.ds, "DoseGridScaling"))  # RT Dose: stored value × scaling = Gy
    slope = slope if slope not in (None, 0.0) else 1.0
    if scaling:
        slope *= scaling
    return (slope, intercept or 0.0)


def _window(groups: _Groups, index: int) -> tuple[float, float] | None:
    center = first(groups.get(index, "FrameVOILUTSequence", "WindowCenter"))
    width = first(groups.get(index, "FrameVOILUTSequence", "WindowWidth"))
    if center is None or width is None or width <= 0:
        return None
    return (center, width)


def _pixel_spacing(ds: Dataset, groups: _Groups) -> tuple[float, float] | None:
    spacing = floats(groups.get(0, "PixelMeasuresSequence", "PixelSpacing"), 2)
    if spacing is None:
        spacing = floats(raw(ds, "ImagerPixelSpacing"), 2)
    if spacing is None or min(spacing) <= 0:
        return None
    return (spacing[0], spacing[1])
