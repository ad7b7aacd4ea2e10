"""Opening DICOM files safely, and turning whatever pydicom raises into a `VolumeReadError`.

Everything here is about one file at a time: sniffing it, reading its header without its
pixels, checking that its pixel data is all there, and wording what went wrong.
"""

from __future__ import annotations

import io
import logging
import os
import re
import struct
from dataclasses import dataclass
from typing import BinaryIO

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from birdview.core.errors import LoadCancelled, VolumeReadError
from birdview.core.io._dicom_walk import walk_header

logger = logging.getLogger(__name__)

_PIXEL_TAGS = {(0x7FE0, 0x0010), (0x7FE0, 0x0008), (0x7FE0, 0x0009)}
_ITEM = (0xFFFE, 0xE000)
_SEQUENCE_END = (0xFFFE, 0xE0DD)
_UNDEFINED = 0xFFFFFFFF
# The first bytes of a file, read at once and parsed in memory: enough for nearly every header.
_HEAD_BYTES = 1 << 16
_PIXEL_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN"}


class ClampedFile:
    """A read-only binary file whose reads never ask for more bytes than the file has left.

    pydicom allocates a buffer of an element's declared length before it reads the value, so a
    damaged length (say 0xFFFFFFF0) in a 2 KB file would otherwise ask for 4 GB.
    """

    # Reads this small cannot allocate much, so they skip the check (pydicom makes hundreds).
    _SMALL = 1 << 16

    def __init__(self, path: str) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()/__exit__
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
        with open(path, "rb") as file:
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
            head_bytes = file.read(_HEAD_BYTES)
            walked = walk_header(head_bytes, file.size, tags) if tags is not None else None
            if walked is not None:
                ds, pixels = walked[0], PixelElement(*walked[1]) if walked[1] else None
                if pixels is not None:
                    _check_pixel_length(file, pixels)
                return ds, pixels
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
    except BaseException as exc:  # noqa: BLE001 - see is_passthrough
        if is_passthrough(exc):
            raise
        raise VolumeReadError(path, header_reason(exc)) from exc


def _parse(
    source: BinaryIO, file: ClampedFile, tags: frozenset[int] | None
) -> tuple[Dataset, PixelElement | None]:
    """Parse ``source`` (the file, or its head in memory) up to the pixel data.

    Parsing from memory is much faster: pydicom makes several tell()/seek() calls per element,
    which cost a system call on a file.
    """
    wanted = list(tags) if tags is not None else None
    ds = pydicom.dcmread(source, force=True, stop_before_pixels=True, specific_tags=wanted)
    if _is_deflated(ds):
        # Deflated files are parsed from an inflated copy, so the position tells nothing;
        # they are small, so just look for the element.
        return ds, _deflated_pixel_element(file.name)
    _, little = ds.original_encoding
    pixels = _pixel_element(source, little is not False)
    if pixels is not None:
        _check_pixel_length(file, pixels)
    return ds, pixels


def check_regular_file(path: str) -> None:
    """Raise `VolumeReadError` unless ``path`` is an existing regular file."""
    if not os.path.exists(path):
        raise VolumeReadError(path, "the file does not exist")
    if not os.path.isfile(path):
        raise VolumeReadError(path, "it is not a regular file")


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


def _is_deflated(ds: Dataset) -> bool:
    meta = getattr(ds, "file_meta", None)
    return (
        meta is not None
        and meta.get("TransferSyntaxUID") == pydicom.uid.DeflatedExplicitVRLittleEndian
    )


def _deflated_pixel_element(path: str) -> PixelElement | None:
    with ClampedFile(path) as file:
        ds = pydicom.dcmread(file, force=True, specific_tags=["PixelData", "FloatPixelData"])
    for keyword in ("PixelData", "FloatPixelData"):
        if keyword in ds:
            return PixelElement(keyword, 0, len(ds[keyword].value or b""))
    return None


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


def _check_pixel_length(file: ClampedFile, pixels: PixelElement) -> None:
    if pixels.length is not None:
        have = max(0, file.size - pixels.value_offset)
        if pixels.length > have:
            raise VolumeReadError(
                file.name,
                f"the file is truncated (pixel data ends after {have} of {pixels.length} bytes)",
            )
        return
    _check_fragments(file, pixels.value_offset)


def _check_fragments(file: ClampedFile, offset: int) -> None:
    """Walk the items of encapsulated pixel data (seeking, not reading) to its end marker."""
    position = offset
    while True:
        file.seek(position)
        head = file.read(8)
        if len(head) < 8:
            have = max(0, file.size - offset)
            raise VolumeReadError(
                file.name,
                f"the file is truncated (pixel data ends after {have} bytes, "
                "before its end marker)",
            )
        group, element, length = struct.unpack("<HHL", head)
        if (group, element) == _SEQUENCE_END:
            return
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
        position = end


# -- wording errors ------------------------------------------------------------------------------

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def header_reason(exc: BaseException) -> str:
    """Say why a header could not be read, without echoing header values (they may be PHI)."""
    if isinstance(exc, InvalidDicomError):
        return "it is not a DICOM file"
    if isinstance(exc, FileNotFoundError):
        return "the file does not exist"
    if isinstance(exc, PermissionError):
        return "it could not be opened (permission denied)"
    if isinstance(exc, OSError):
        return f"it could not be read ({exc.strerror or type(exc).__name__})"
    if isinstance(exc, MemoryError):
        return "it declares an element too large to read (the file is probably damaged)"
    if isinstance(exc, EOFError):
        return "the file is truncated (it ends inside its header)"
    return f"its header is damaged ({_short(exc, quoted=False)})"


def pixel_reason(exc: BaseException) -> str:
    """Say why pixel data could not be decoded; decoder messages carry no header values."""
    if isinstance(exc, MemoryError):
        return "there is not enough memory to decode its pixel data"
    if isinstance(exc, (OSError, InvalidDicomError)):
        return header_reason(exc)
    if isinstance(exc, EOFError):
        return "the file is truncated (it ends inside its pixel data)"
    return f"its pixel data could not be decoded ({_short(exc, quoted=True)})"


def _short(exc: BaseException, *, quoted: bool) -> str:
    text = " ".join(str(exc).split())
    if not quoted:
        text = _QUOTED.sub("'…'", text)
    text = text[:160] + ("…" if len(text) > 160 else "")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
    if not uid:
        return "unknown SOP class"
    return UID(uid).name


def _value(ds: Dataset, keyword: str) -> object:
    try:
        return ds.get(keyword)
    except Exception:  # a malformed value reads as absent
        return None
