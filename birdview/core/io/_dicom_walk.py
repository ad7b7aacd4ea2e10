"""A fast first pass over a header: walk its elements with `struct`, keep the wanted ones.

pydicom's reader builds objects for every element of a header, hundreds per file, and that
was most of the time of a folder scan. This walk only unpacks tags and lengths and keeps the
wanted elements as pydicom `RawDataElement`s, so pydicom still converts every value. It takes
the common case only: a 'DICM' preamble, file meta, a transfer syntax pydicom knows that is not
deflated, and no sequence among the wanted elements. Anything else returns None, and the caller
reads the file with pydicom instead. Each step moves forward, so the walk always ends.
"""

from __future__ import annotations

import struct
from functools import lru_cache

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import BaseTag
from pydicom.uid import UID

_LONG_VRS = {
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"SQ",
    b"SV",
    b"UC",
    b"UN",
    b"UR",
    b"UT",
    b"UV",
}
_SHORT_VRS = {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT"}
_SHORT_VRS |= {b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"}
_PIXEL_KEYWORDS = {
    0x7FE00008: "FloatPixelData",
    0x7FE00009: "DoubleFloatPixelData",
    0x7FE00010: "PixelData",
}
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_MAX_DEPTH = 12
_CHARSET = 0x00080005  # pydicom needs it to decode text


class _Decline(Exception):
    """The walk met something that only pydicom's reader handles."""


def walk_header(
    head: bytes, file_size: int, tags: frozenset[int]
) -> tuple[Dataset, tuple[str, int, int | None] | None] | None:
    """The wanted elements of the file whose first bytes are ``head``, and its pixel element.

    Returns (dataset, (keyword, value offset, length or None)) or (dataset, None) when the file
    has no pixel data; None when the walk declines.
    """
    if len(head) < 132 or head[128:132] != b"DICM":
        return None
    try:
        meta, position = _walk_meta(head)
        syntax = UID(meta[0x00020010].value.decode("ascii").strip(" \x00"))
        if not syntax.is_transfer_syntax or syntax.is_deflated:
            return None
        walker = _Walker(head, syntax.is_implicit_VR, syntax.is_little_endian)
        found, pixels = walker.dataset(position, tags | {_CHARSET}, _sequences(tags))
    except (_Decline, KeyError, ValueError, UnicodeDecodeError, struct.error):
        return None
    if pixels is None and len(head) < file_size:
        return None  # the header goes on past the head
    ds = Dataset(found)
    ds.file_meta = FileMetaDataset(meta)
    ds.set_original_encoding(walker.implicit, walker.little)
    return ds, pixels


def file_meta(head: bytes) -> tuple[FileMetaDataset, int] | None:
    """The file meta of the file whose first bytes are ``head``, and where its dataset starts.

    None when the file has no 'DICM' preamble or its meta is not the plain kind the walk takes.
    """
    if len(head) < 132 or head[128:132] != b"DICM":
        return None
    try:
        meta, position = _walk_meta(head)
    except (_Decline, struct.error):
        return None
    return FileMetaDataset(meta), position


@lru_cache(maxsize=8)
def _sequences(tags: frozenset[int]) -> frozenset[int]:
    """The wanted tags that are sequences: pydicom parses those."""
    wanted = set()
    for tag in tags:
        try:
            if dictionary_VR(tag) == "SQ":
                wanted.add(tag)
        except KeyError:
            continue
    return frozenset(wanted)


def _walk_meta(head: bytes) -> tuple[dict[int, RawDataElement], int]:
    """File meta (group 0002) is always explicit VR little endian."""
    walker = _Walker(head, implicit=False, little=True)
    meta: dict[int, RawDataElement] = {}
    position = 132
    while position + 8 <= len(head) and head[position : position + 2] == b"\x02\x00":
        tag, vr, length, start = walker.element(position)
        if length == _UNDEFINED:
            raise _Decline
        position = start + length
        meta[tag] = RawDataElement(
            BaseTag(tag), vr, length, head[start:position], start, False, True
        )
    if position > len(head) or 0x00020010 not in meta:
        raise _Decline
    return meta, position


class _Walker:
    def __init__(self, head: bytes, implicit: bool, little: bool) -> None:
        self.head, self.implicit, self.little = head, implicit, little
        order = "<" if little else ">"
        self._tag = struct.Struct(order + "HH")
        self._short = struct.Struct(order + "H")
        self._long = struct.Struct(order + "L")
        self._explicit = struct.Struct(order + "HH2sH")
        self._implicit = struct.Struct(order + "HHL")

    def element(self, position: int) -> tuple[int, str | None, int, int]:
        """(tag, VR, length, value offset) of the element header at ``position``."""
        head = self.head
        if position + 8 > len(head):
            raise _Decline
        group, number = self._tag.unpack_from(head, position)
        tag = group << 16 | number
        if self.implicit or group == 0xFFFE:  # items and delimiters carry no VR
            return tag, None, self._long.unpack_from(head, position + 4)[0], position + 8
        vr = head[position + 4 : position + 6]
        if vr in _SHORT_VRS:
            return tag, vr.decode(), self._short.unpack_from(head, position + 6)[0], position + 8
        if vr not in _LONG_VRS or position + 12 > len(head):
            raise _Decline
        return tag, vr.decode(), self._long.unpack_from(head, position + 8)[0], position + 12

    def dataset(
        self, position: int, tags: frozenset[int], sequences: frozenset[int]
    ) -> tuple[dict[int, RawDataElement], tuple[str, int, int | None] | None]:
        """Walk the top level from ``position`` to the pixel data (the loop is the hot path:
        one unpack per element, nothing built for elements that are not wanted)."""
        head, end, implicit = self.head, len(self.head), self.implicit
        explicit_unpack, implicit_unpack = self._explicit.unpack_from, self._implicit.unpack_from
        long_unpack = self._long.unpack_from
        short_vrs, long_vrs, pixel_tags, undefined = (
            _SHORT_VRS,
            _LONG_VRS,
            _PIXEL_KEYWORDS,
            _UNDEFINED,
        )
        found: dict[int, RawDataElement] = {}
        while position + 8 <= end:
            if implicit:
                group, number, length = implicit_unpack(head, position)
                vr, start = None, position + 8
            else:
                group, number, vr, length = explicit_unpack(head, position)
                start = position + 8
                if vr not in short_vrs:
                    if vr not in long_vrs or position + 12 > end:
                        raise _Decline
                    (length,) = long_unpack(head, position + 8)
                    start = position + 12
            tag = group << 16 | number
            if tag in pixel_tags:
                return found, self._pixels(tag, position)
            if length == undefined:
                if tag in tags or not (implicit or vr == b"SQ"):
                    raise _Decline  # a wanted sequence, or undefined-length UN: pydicom's job
                position = self._skip_sequence(start, 1)
                continue
            position = start + length
            if tag in tags:
                if tag in sequences or position > end:
                    raise _Decline
                found[tag] = RawDataElement(
                    BaseTag(tag), vr.decode() if vr else None, length, head[start:position],
                    start, implicit, self.little,
                )  # fmt: skip
        if position != end:
            raise _Decline
        return found, None

    def _pixels(self, tag: int, position: int) -> tuple[str, int, int | None]:
        # Pixel data always has a 4-byte length: after the tag (implicit) or VR and 2 bytes.
        offset = position + (8 if self.implicit else 12)
        if offset > len(self.head):
            raise _Decline
        (length,) = self._long.unpack_from(self.head, offset - 4)
        return _PIXEL_KEYWORDS[tag], offset, None if length == _UNDEFINED else length

    def _skip_sequence(self, position: int, depth: int) -> int:
        """The position after an undefined-length sequence starting at ``position``."""
        if depth > _MAX_DEPTH:
            raise _Decline
        while True:
            tag, _, length, start = self.element(position)
            if tag == _SEQUENCE_END:
                return start
            if tag != _ITEM:
                raise _Decline
            position = start + length if length != _UNDEFINED else self._skip_item(start, depth)

    def _skip_item(self, position: int, depth: int) -> int:
        """The position after an undefined-length item starting at ``position``."""
        while True:
            tag, vr, length, start = self.element(position)
            if tag == _ITEM_END:
                return start
            if length != _UNDEFINED:
                position = start + length
            elif self.implicit or vr == "SQ":
                position = self._skip_sequence(start, depth + 1)
            else:
                raise _Decline
