"""Deflated DICOM (Deflated Explicit VR Little Endian): inflated a piece at a time.

pydicom inflates the whole dataset of such a file in memory before it parses a byte of it, and
deflate expands up to 1032:1: a 2 MB file can become gigabytes. Here the dataset is inflated
only as far as it is read, with a cap on how far that may go: the header, then exactly the pixel
bytes the header says the frames need.
"""

from __future__ import annotations

import zlib
from typing import BinaryIO

from birdview.core.errors import VolumeReadError
from birdview.core.io._limits import format_bytes

# Deflate cannot expand data by more than about 1032:1.
MAX_DEFLATE_RATIO = 1032
# How far into the inflated dataset the pixel data may start: far beyond any real header.
HEADER_LIMIT_BYTES = 256 * 1024**2


class InflatingReader:
    """A read-only file over the inflated dataset, for pydicom's reader.

    It inflates on demand and keeps only the last ``_KEEP`` bytes behind the read position
    (pydicom seeks back a few bytes at most), so skipping a large element costs time, not
    memory. Reading past ``limit`` in a stream that goes on raises `VolumeReadError` with
    ``why``.
    """

    _CHUNK = 1 << 16
    _KEEP = 1 << 20

    def __init__(self, file: BinaryIO, start: int, path: str, limit: int, why: str) -> None:
        file.seek(start)
        self.name = path
        self._file = file
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self._buffer = bytearray()
        self._base = 0  # where in the inflated stream self._buffer starts
        self._position = 0
        self._ended = False
        self.limit = limit
        self.why = why

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = 0) -> int:
        target = {0: offset, 1: self._position + offset}.get(whence)
        if target is None:
            raise OSError("a deflated dataset cannot be read from its end")
        if target < self._base:
            raise OSError("a deflated dataset cannot be re-read that far back")
        self._position = target
        return target

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self.limit - self._position
        end = self._position + size
        self._fill(end)
        start = self._position - self._base
        data = bytes(self._buffer[start : start + size])
        self._position += len(data)
        return data

    def _fill(self, end: int) -> None:
        """Inflate until the buffer reaches ``end`` or the stream ends; a stream that goes on
        past ``limit`` is refused (one that ends first simply reads short, as a file would)."""
        while self._base + len(self._buffer) < end and not self._ended:
            if self._base + len(self._buffer) >= self.limit:
                raise VolumeReadError(self.name, self.why)
            self._inflate_chunk()
            behind = self._position - self._KEEP - self._base
            if behind > self._KEEP:  # drop what pydicom can no longer seek back to
                del self._buffer[:behind]
                self._base += behind

    def _inflate_chunk(self) -> None:
        data = self._inflater.unconsumed_tail or self._file.read(self._CHUNK)
        if not data:
            self._ended = True
            return
        # Bounded output per call: one small chunk cannot balloon into gigabytes at once.
        self._buffer += self._inflater.decompress(data, self._CHUNK * 16)
        self._ended = self._inflater.eof


def check_inflated_length(path: str, length: int, compressed_bytes: int) -> None:
    """Refuse pixel data longer than the file's deflated bytes could inflate to."""
    if length > MAX_DEFLATE_RATIO * compressed_bytes:
        raise VolumeReadError(
            path,
            f"its pixel data declares {format_bytes(length)}, more than its "
            f"{format_bytes(compressed_bytes)} of deflated data can hold; the file is damaged",
        )
