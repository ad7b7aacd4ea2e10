"""Opening DICOM files safely, and turning whatever pydicom raises into a `VolumeReadError`.

Everything here is about one file at a time: sniffing it, reading its header without its
pixels, checking that its pixel data is all there, and wording what went wrong.
"""

from __future__ import annotations

import io
import logging
import os
import struct
from dataclasses import dataclass, replace
from typing import BinaryIO

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import read_dataset
from pydicom.uid import UID

from birdview.core.errors import LoadCancelled, VolumeReadError
from birdview.core.io import _limits
from birdview.core.io._dicom_deflate import (
    HEADER_LIMIT_BYTES,
    InflatingReader,
    check_inflated_length,
)
from birdview.core.io._dicom_values import as_int, raw, raw_text, uint
from birdview.core.io._dicom_walk import file_meta, walk_header
from birdview.core.io._limits import format_bytes, open_regular
from birdview.core.io._messages import header_reason

logger = logging.getLogger(__name__)

_PIXEL_TAGS = {(0x7FE0, 0x0010), (0x7FE0, 0x0008), (0x7FE0, 0x0009)}
_ITEM = (0xFFFE, 0xE000)
_SEQUENCE_END = (0xFFFE, 0xE0DD)
_UNDEFINED = 0xFFFFFFFF
# The first bytes of a file, read at once and parsed in memory: enough for nearly every header.
_HEAD_BYTES = 1 << 16
_PIXEL_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN"}
_FRAGMENT_BLOCK_BYTES = 1 << 16


class ClampedFile:
    """A read-only binary file whose reads never ask for more bytes than the file has left.

    pydicom allocates a buffer of an element's declared length before it reads the value, so a
    damaged length (say 0xFFFFFFF0) in a 2 KB file would otherwise ask for 4 GB.
    """

    # Reads this small cannot allocate much, so they skip the check (pydicom makes hundreds).
    _SMALL = 1 << 16

    def __init__(self, path: str) -> None:
        self._file = open_regular(path)  # closed by close()/__exit__
        self.size = os.fstat(self._file.fileno()).st_size
        self.name = path
        self.tell = self._file.tell
        self.seek = self._file.seek

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and 0 <= size <= self._SMALL:
            return self._file.read(size)
        if size is None or size < 0:
            return self._file.read()
        left = self.size - self._file.tell()
        return self._file.read(max(0, min(size, left)))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ClampedFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def looks_like_dicom(path: str) -> bool:
    """True for 'DICM' at byte 128, or a preamble-less start with a group 0002/0008 tag."""
    try:
        with open_regular(path) as file:
            head = file.read(132)
    except (OSError, ValueError, TypeError):
        return False
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    return len(head) >= 8 and any(_plausible_start(head, order) for order in "<>")


def _plausible_start(head: bytes, order: str) -> bool:
    """A dataset written without preamble starts with its lowest tag: one of the file meta
    (0002) or identification (0008) group's first elements, then a VR or a 4-byte length."""
    group, element = struct.unpack(order + "HH", head[:4])
    if group not in (0x0002, 0x0008) or element >= 0x0100:
        return False
    vr = head[4:6]
    if vr.isalpha() and vr.isupper():  # explicit VR
        return True
    (length,) = struct.unpack(order + "L", head[4:8])  # implicit VR: a sane length
    return length < 0x10000


@dataclass(frozen=True)
class PixelElement:
    """Where a file's pixel data element is (None when the file has none)."""

    keyword: str
    value_offset: int
    length: int | None  # None: encapsulated (undefined length)
    fragments: int | None = None  # encapsulated: how many fragments follow the offset table


def read_header(
    path: str, tags: frozenset[int] | None = None
) -> tuple[Dataset, PixelElement | None]:
    """The dataset without its pixels (only ``tags`` if given) and where its pixel data is.

    Raises:
        VolumeReadError: the file is missing, not DICOM, damaged or truncated.
    """
    check_regular_file(path)
    if not looks_like_dicom(path):
        raise VolumeReadError(path, "it is not a DICOM file")
    try:
        with ClampedFile(path) as file:
            return _read_header(file, tags)
    except BaseException as exc:  # noqa: BLE001 - see is_passthrough
        if is_passthrough(exc):
            raise
        raise VolumeReadError(path, header_reason(exc)) from exc


def _read_header(
    file: ClampedFile, tags: frozenset[int] | None
) -> tuple[Dataset, PixelElement | None]:
    head_bytes = file.read(_HEAD_BYTES)
    deflated = _deflated_meta(head_bytes)
    if deflated is not None:
        ds, pixels, _ = _read_deflated(file, *deflated, tags)
        return ds, pixels
    walked = walk_header(head_bytes, file.size, tags) if tags is not None else None
    if walked is not None:
        pixels = PixelElement(*walked[1]) if walked[1] else None
        return walked[0], _check_pixel_length(file, pixels)
    head = io.BytesIO(head_bytes)
    if file.size <= _HEAD_BYTES:
        return _parse(head, file, tags)
    try:
        ds, pixels = _parse(head, file, tags)
        if pixels is not None and pixels.value_offset <= len(head_bytes):
            return ds, pixels
    except VolumeReadError:
        raise
    except Exception:  # the header goes on past the head: read it from the file
        pass
    logger.debug("a header longer than %d bytes: parsing it from the file", _HEAD_BYTES)
    file.seek(0)
    return _parse(file, file, tags)


def _parse(
    source: BinaryIO, file: ClampedFile, tags: frozenset[int] | None
) -> tuple[Dataset, PixelElement | None]:
    """Parse ``source`` (the file, or its head in memory) up to the pixel data.

    Parsing from memory is much faster: pydicom makes several tell()/seek() calls per element,
    which cost a system call on a file.
    """
    wanted = list(tags) if tags is not None else None
    ds = pydicom.dcmread(source, force=True, stop_before_pixels=True, specific_tags=wanted)
    _, little = ds.original_encoding
    return ds, _check_pixel_length(file, _pixel_element(source, little is not False))


def check_regular_file(path: str) -> None:
    """Raise `VolumeReadError` unless ``path`` is an existing regular file (not a pipe...)."""
    _limits.check_regular_file(path)


def transfer_syntax(ds: Dataset) -> str:
    """The file's transfer syntax, inferred from how it was parsed when it has no file meta."""
    meta = getattr(ds, "file_meta", None)
    uid = str(meta.get("TransferSyntaxUID", "") or "") if meta is not None else ""
    if uid:
        return uid
    implicit, little = ds.original_encoding
    if implicit:
        return pydicom.uid.ImplicitVRLittleEndian
    return pydicom.uid.ExplicitVRLittleEndian if little else pydicom.uid.ExplicitVRBigEndian


# -- deflated files --------------------------------------------------------------------------

_DEFLATED_TOO_LONG = (
    f"its deflated header is longer than {format_bytes(HEADER_LIMIT_BYTES)} once inflated; "
    "the file is damaged"
)


def _deflated_meta(head: bytes) -> tuple[FileMetaDataset, int] | None:
    """The file meta and dataset start of a deflated file; None for any other file."""
    meta = file_meta(head)
    if meta is None and head[128:132] == b"DICM":
        meta = _pydicom_meta(head)
    if meta is None:
        return None
    syntax = meta[0].get("TransferSyntaxUID")
    return meta if syntax == pydicom.uid.DeflatedExplicitVRLittleEndian else None


def _pydicom_meta(head: bytes) -> tuple[FileMetaDataset, int] | None:
    """File meta the fast walk declines (undefined lengths, odd elements), read by pydicom."""
    from pydicom.filereader import _read_file_meta_info

    source = io.BytesIO(head)
    source.seek(132)
    try:
        return _read_file_meta_info(source), source.tell()
    except Exception:  # a meta pydicom cannot read either: it will not inflate anything
        return None


def _read_deflated(
    file: ClampedFile, meta: FileMetaDataset, start: int, tags: frozenset[int] | None
) -> tuple[Dataset, PixelElement | None, InflatingReader]:
    """The header of a deflated file, inflated no further than its pixel data element.

    Offsets in the returned element count in the inflated dataset, read through the returned
    reader.
    """
    reader = InflatingReader(file, start, file.name, HEADER_LIMIT_BYTES, _DEFLATED_TOO_LONG)
    wanted = [*tags, 0x00080005] if tags is not None else None
    ds = read_dataset(reader, False, True, stop_when=_at_pixels, specific_tags=wanted)
    ds.file_meta = meta
    pixels = _pixel_element(reader, True)  # type: ignore[arg-type]
    if pixels is not None:
        check_inflated_length(file.name, pixels.length or 0, file.size - start)
    return ds, pixels, reader


def _at_pixels(tag: int, vr: object, length: int) -> bool:
    return tag in (0x7FE00010, 0x7FE00008, 0x7FE00009)


def read_deflated_dataset(path: str) -> Dataset:
    """A deflated file's dataset with exactly the pixel bytes its header says its frames need.

    Nothing past those bytes is inflated, and they must fit in the memory available. The
    result says it is Explicit VR Little Endian, which is what the inflated bytes are.

    Raises:
        VolumeReadError: the file is damaged or truncated, or its pixels would not fit.
    """
    with ClampedFile(path) as file:
        deflated = _deflated_meta(file.read(_HEAD_BYTES))
        if deflated is None:
            raise VolumeReadError(path, "it is no longer a deflated DICOM file")
        ds, pixels, reader = _read_deflated(file, *deflated, None)
        needed = _declared_pixel_bytes(ds)
        _limits.check_fits(path, needed, "the pixels of its frames")
        if pixels is None or pixels.length is None or pixels.length < needed:
            have = (pixels.length or 0) if pixels is not None else 0
            raise VolumeReadError(
                path, f"its deflated pixel data holds {have} of the {needed} bytes its frames need"
            )
        reader.limit = pixels.value_offset + needed
        reader.seek(pixels.value_offset)
        data = reader.read(needed)
    if len(data) < needed:
        raise VolumeReadError(
            path, f"the file is truncated (its deflated pixel data ends after {len(data)} of "
            f"{needed} bytes)",
        )  # fmt: skip
    vr = {"PixelData": "OB", "FloatPixelData": "OF", "DoubleFloatPixelData": "OD"}
    ds.add_new(pixels.keyword, vr[pixels.keyword], data)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    return ds


def _declared_pixel_bytes(ds: Dataset) -> int:
    frame_bits = native_frame_bits(
        uint(ds, "Rows") or 0, uint(ds, "Columns") or 0, uint(ds, "SamplesPerPixel") or 1,
        uint(ds, "BitsAllocated") or 8, raw_text(ds, "PhotometricInterpretation").upper(),
    )  # fmt: skip
    frames = max(1, as_int(raw(ds, "NumberOfFrames")) or 1)
    return -(-frame_bits * frames // 8)


def native_frame_bits(
    rows: int, cols: int, samples: int, bits_allocated: int, photometric: str
) -> int:
    """Bits one uncompressed frame takes (YBR_FULL_422 stores two values per pixel)."""
    bits = rows * cols * samples * bits_allocated
    if samples == 3 and photometric == "YBR_FULL_422":
        bits = bits * 2 // 3
    return bits


def _pixel_element(file: BinaryIO, little: bool) -> PixelElement | None:
    """Parse the element header pydicom stopped at (it rewinds to the pixel data tag).

    Whether it is explicit VR is read off the bytes: some files are encoded otherwise than
    their transfer syntax says, and pydicom quietly adapts.
    """
    start = file.tell()
    head = file.read(8)
    if len(head) < 8:
        return None
    order = "<" if little else ">"
    group, element = struct.unpack(order + "HH", head[:4])
    if (group, element) not in _PIXEL_TAGS:
        return None
    keyword = {0x0010: "PixelData", 0x0008: "FloatPixelData", 0x0009: "DoubleFloatPixelData"}[
        element
    ]
    if head[4:6] not in _PIXEL_VRS:
        (length,) = struct.unpack(order + "L", head[4:8])
        value_offset = start + 8
    else:
        # Pixel data VRs (OB, OW, OF, OD) always have a 4-byte length after 2 reserved bytes.
        extra = file.read(4)
        if len(extra) < 4:
            return PixelElement(keyword, start + 12, 1)  # the check below reports truncation
        (length,) = struct.unpack(order + "L", extra)
        value_offset = start + 12
    return PixelElement(keyword, value_offset, None if length == _UNDEFINED else length)


def _check_pixel_length(file: ClampedFile, pixels: PixelElement | None) -> PixelElement | None:
    """``pixels`` once it is known to fit in the file, with its fragments counted."""
    if pixels is None:
        return None
    if pixels.length is not None:
        have = max(0, file.size - pixels.value_offset)
        if pixels.length > have:
            raise VolumeReadError(
                file.name,
                f"the file is truncated (pixel data ends after {have} of {pixels.length} bytes)",
            )
        return pixels
    return replace(pixels, fragments=_count_fragments(file, pixels.value_offset))


def _count_fragments(file: ClampedFile, offset: int) -> int:
    """Walk the items of encapsulated pixel data (seeking, not reading) to its end marker;
    count the fragments after the offset table."""
    position, items = offset, 0
    block, block_start = b"", offset  # item headers are read a block at a time: files with
    while True:  # millions of tiny fragments exist, and a read per item took seconds
        if not 0 <= position - block_start <= len(block) - 8:
            file.seek(position)
            block, block_start = file.read(_FRAGMENT_BLOCK_BYTES), position
        head = block[position - block_start : position - block_start + 8]
        if len(head) < 8:
            have = max(0, file.size - offset)
            raise VolumeReadError(
                file.name,
                f"the file is truncated (pixel data ends after {have} bytes, "
                "before its end marker)",
            )
        group, element, length = struct.unpack("<HHL", head)
        if (group, element) == _SEQUENCE_END:
            return max(0, items - 1)
        if (group, element) != _ITEM:
            raise VolumeReadError(
                file.name,
                f"its compressed pixel data is damaged (tag ({group:04X},{element:04X}) where a "
                f"fragment should start, at byte {position})",
            )
        end = position + 8 + length
        if end > file.size:
            have, need = file.size - offset, end - offset
            raise VolumeReadError(
                file.name, f"the file is truncated (pixel data ends after {have} of {need} bytes)"
            )
        position, items = end, items + 1


def is_passthrough(exc: BaseException) -> bool:
    """Errors that must reach the caller as they are; everything else becomes a read error.

    Readers catch ``BaseException`` because a panicking codec written in Rust (pylibjpeg-rle)
    raises pyo3's ``PanicException``, which is not an ``Exception``.
    """
    return isinstance(
        exc, (VolumeReadError, LoadCancelled, KeyboardInterrupt, SystemExit, GeneratorExit)
    )


def sop_class_name(ds: Dataset) -> str:
    """The SOP class's name ("Basic Text SR Storage"), falling back to the file meta's."""
    uid = str(_value(ds, "SOPClassUID") or "")
    meta = getattr(ds, "file_meta", None)
    if not uid and meta is not None:
        uid = str(_value(meta, "MediaStorageSOPClassUID") or "")
    if not uid or not UID(uid).is_valid:  # a damaged value: never echo its bytes
        return "unknown SOP class"
    return UID(uid).name


def _value(ds: Dataset, keyword: str) -> object:
    try:
        return ds.get(keyword)
    except Exception:  # a malformed value reads as absent
        return None
