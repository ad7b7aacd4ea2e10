"""Checking compressed frames before a codec sees them.

A damaged JPEG, JPEG-LS or JPEG 2000 stream can claim an image of billions of pixels: libjpeg
then decodes for minutes and gdcm aborts the process on the allocation. Each frame's own
header says how big it is; a frame whose size disagrees with the DICOM header is refused here,
before any decoder runs.
"""

from __future__ import annotations

import struct

import pydicom

from birdview.core.errors import VolumeReadError
from birdview.core.io._dicom_file import ClampedFile, header_reason

_JPEG = {
    pydicom.uid.JPEGBaseline8Bit, pydicom.uid.JPEGExtended12Bit, pydicom.uid.JPEGLossless,
    pydicom.uid.JPEGLosslessSV1, pydicom.uid.JPEGLSLossless, pydicom.uid.JPEGLSNearLossless,
}  # fmt: skip
_JPEG_2000 = {
    pydicom.uid.JPEG2000Lossless, pydicom.uid.JPEG2000, pydicom.uid.HTJ2KLossless,
    pydicom.uid.HTJ2KLosslessRPCL, pydicom.uid.HTJ2K,
}  # fmt: skip
# Start of frame: JPEG processes (not DHT C4, JPG C8, DAC CC) and JPEG-LS (F7).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}
_ITEM, _SEQUENCE_END = (0xFFFE, 0xE000), (0xFFFE, 0xE0DD)
_LOOK_BYTES = 1 << 16  # where a frame's size must have been said by


def check_frames(path: str, offset: int, rows: int, cols: int, syntax: str) -> None:
    """Raise `VolumeReadError` if a frame of the encapsulated pixel data at ``offset`` says
    it is not ``rows`` × ``cols``."""
    size_of = _jpeg_size if syntax in _JPEG else _j2k_size if syntax in _JPEG_2000 else None
    if size_of is None:
        return
    try:
        with ClampedFile(path) as file:
            sizes = [size_of(start) for start in _frame_starts(file, offset)]
    except (OSError, struct.error) as exc:
        raise VolumeReadError(path, header_reason(exc)) from exc
    for number, size in enumerate(sizes):
        if size is None:
            continue  # a fragment that continues a frame, or a header we do not parse
        if size[1] != cols or size[0] not in (rows, 0):  # JPEG may say 0 rows (DNL)
            raise VolumeReadError(
                path,
                f"its compressed pixel data is damaged (fragment {number + 1} is a "
                f"{size[0]}×{size[1]} image where the header says {rows}×{cols})",
            )


def _frame_starts(file: ClampedFile, offset: int):
    """The first bytes of each fragment after the offset table (seeking over the rest)."""
    position, first = offset, True
    while True:
        file.seek(position)
        head = file.read(8)
        if len(head) < 8:
            return
        group, element, length = struct.unpack("<HHL", head)
        if (group, element) != _ITEM:
            return  # the end marker, or damage the decoder will report
        if not first:
            yield file.read(min(length, _LOOK_BYTES))
        first = False
        position += 8 + length


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(rows, columns) from a JPEG or JPEG-LS start-of-frame segment."""
    if data[:2] != b"\xff\xd8":
        return None
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            position += 2
        elif marker in _SOF:
            if position + 9 > len(data):
                return None
            lines, samples = struct.unpack(">HH", data[position + 5 : position + 9])
            return (lines, samples)
        elif marker == 0xDA:  # scan data before any frame header
            return None
        else:
            position += 2 + struct.unpack(">H", data[position + 2 : position + 4])[0]
    return None


def _j2k_size(data: bytes) -> tuple[int, int] | None:
    """(rows, columns) from a JPEG 2000 SIZ segment (raw codestream or inside a JP2 file)."""
    start = data.find(b"\xff\x4f\xff\x51")  # SOC, then SIZ
    if start < 0 or start + 24 > len(data):
        return None
    width, height, x_offset, y_offset = struct.unpack(">IIII", data[start + 8 : start + 24])
    return (height - y_offset, width - x_offset)
