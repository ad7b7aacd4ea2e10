"""Mutated bytes of real DICOM, NIfTI and PNG files: only VolumeReadError may escape, and fast.

Each example writes a damaged copy of a real file (truncated, bytes flipped, a length field
overwritten with a huge value, bytes inserted or deleted) and opens it the way the viewer does.
A second property runs the DICOM header parser on generated headers (hostile lengths, frame
counts, nesting, deflated and encapsulated syntaxes) in a child whose memory is capped.
"""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import nibabel.testing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from birdview.core.errors import VolumeReadError
from birdview.core.io import load, scan
from tests.conftest import REPO, SHARED_DATA

SEEDS = {
    "dicom_mr": SHARED_DATA / "dcm4che_mr" / "MR01.dcm",
    "dicom_j2k": SHARED_DATA
    / "totalseg"
    / "example_ct_dicom"
    / "CT.1.3.12.2.1107.5.1.4.60064.30000022120808113428000016573",
    "dicom_rle_multiframe": SHARED_DATA
    / "dicom_multiframe"
    / "encapsulated"
    / "multi-frame"
    / "CT0012.not_fragmented_bot_rle.dcm",
    "dicom_deflate": SHARED_DATA / "dicom_multiframe" / "deflate" / "image_dfl",
    "nifti_gz": SHARED_DATA / "totalseg" / "example_seg_mr.nii.gz",
    "nifti": Path(nibabel.testing.data_path) / "anatomical.nii",
    "png": SHARED_DATA / "sammed2d_demo" / "data_demo" / "images" / "s0619_32.png",
}
SUFFIX = {"nifti_gz": ".nii.gz", "nifti": ".nii", "png": ".png"}
# Generous: a damaged file must fail as fast as a good one loads, never spin.
MAX_SECONDS = 20.0

_cache: dict[str, bytes] = {}


def _seed_bytes(name: str) -> bytes:
    if name not in _cache:
        _cache[name] = SEEDS[name].read_bytes()
    return _cache[name]


@st.composite
def mutations(draw):
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(_seed_bytes(name))
    if name == "nifti_gz" and draw(st.booleans()):
        # Mutate inside the gzip stream too, not only the compressed bytes.
        data = bytearray(gzip.decompress(bytes(data)))
        recompress = True
    else:
        recompress = False
    for _ in range(draw(st.integers(1, 4))):
        data = _mutate(draw, data)
    if recompress:
        data = bytearray(gzip.compress(bytes(data)))
    return name, bytes(data)


def _mutate(draw, data: bytearray) -> bytearray:
    if not data:
        return data
    kind = draw(st.sampled_from(["truncate", "flip", "huge_length", "insert", "delete"]))
    # Headers hold the interesting structure: bias positions towards the start.
    limit = len(data) - 1 if draw(st.booleans()) else min(len(data) - 1, 4096)
    at = draw(st.integers(0, limit))
    if kind == "truncate":
        return data[:at]
    if kind == "flip":
        data[at] ^= draw(st.integers(1, 255))
    elif kind == "huge_length":
        data[at : at + 4] = draw(
            st.sampled_from([b"\xff\xff\xff\xff", b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80"])
        )
    elif kind == "insert":
        data[at:at] = draw(st.binary(min_size=1, max_size=16))
    else:
        del data[at : at + draw(st.integers(1, 64))]
    return data


def _open_like_the_viewer(path: str) -> None:
    catalog = scan(path)
    assert all("damaged" in problem.message for problem in catalog.problems)
    for entry in catalog.entries:
        volume = load(entry)
        assert volume.voxels.size > 0


@pytest.mark.timeout(600)
@settings(
    max_examples=int(os.environ.get("BIRDVIEW_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
@given(mutations())
def test_damaged_files_raise_only_the_documented_error(case):
    name, data = case
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "damaged" + SUFFIX.get(name, ".dcm"))
        with open(path, "wb") as handle:
            handle.write(data)
        started = time.monotonic()
        try:
            _open_like_the_viewer(path)
        except VolumeReadError as exc:
            assert "damaged" in str(exc), str(exc)
            assert " object at 0x" not in str(exc), str(exc)
        assert time.monotonic() - started < MAX_SECONDS


# -- the header parser on generated headers, under a memory cap --------------------------------

# Tags the scan reads or must step over, items and delimiters among them.
_TAGS = [
    (0x0002, 0x0010), (0x0008, 0x0016), (0x0008, 0x0018), (0x0009, 0x1010), (0x0020, 0x000E),
    (0x0020, 0x0032), (0x0028, 0x0002), (0x0028, 0x0004), (0x0028, 0x0008), (0x0028, 0x0010),
    (0x0028, 0x0011), (0x0028, 0x0100), (0x0028, 0x3000), (0x5200, 0x9229), (0x5200, 0x9230),
    (0x7FE0, 0x0008), (0x7FE0, 0x0010), (0xFFFE, 0xE000), (0xFFFE, 0xE00D), (0xFFFE, 0xE0DD),
]  # fmt: skip
_VRS = [b"US", b"UL", b"IS", b"DS", b"CS", b"UI", b"SQ", b"OB", b"OW", b"UN", b"UT", b"ZZ"]
_LONG_VRS = {b"SQ", b"OB", b"OW", b"UN", b"UT"}
_ADVERSE_LENGTHS = [0, 1, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0, 0xFFFFFFFF]
_SYNTAXES = {
    "1.2.840.10008.1.2": (True, "<"),  # implicit VR little endian
    "1.2.840.10008.1.2.1": (False, "<"),
    "1.2.840.10008.1.2.2": (False, ">"),
    "1.2.840.10008.1.2.1.99": (False, "<"),  # deflated
    "1.2.840.10008.1.2.4.50": (False, "<"),  # JPEG baseline: encapsulated pixels
}


@st.composite
def dicom_headers(draw) -> bytes:
    """A preamble, a plausible file meta, an image's elements with drawn values (honest or
    hostile: 2³¹ frames, 0 rows, 64-bit samples), pixel data of drawn declared length, and
    stray elements with drawn tags, VRs and lengths wherever the draw puts them."""
    syntax = draw(st.sampled_from(sorted(_SYNTAXES)))
    implicit, order = _SYNTAXES[syntax]
    elements = [_encode(implicit, order, *element) for element in draw(_image_elements())]
    elements.append(draw(_pixel_data(implicit, order, encapsulated=syntax.endswith(".50"))))
    for stray in draw(st.lists(_elements(implicit, order), max_size=4)):
        elements.insert(draw(st.integers(0, len(elements))), stray)
    body = b"".join(elements)
    if syntax.endswith(".99"):
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        body = compressor.compress(body) + compressor.flush()
    uid = syntax.encode() + b"\0" * (len(syntax) % 2)
    meta = struct.pack("<HH2sH", 2, 0x10, b"UI", len(uid)) + uid
    meta = struct.pack("<HH2sHL", 2, 0, b"UL", 4, len(meta)) + meta
    return b"\0" * 128 + b"DICM" + meta + body


def _image_elements():
    def text(values):
        return st.sampled_from(values).map(lambda v: v.encode() + b" " * (len(v) % 2))

    def number(values):
        return st.one_of(st.sampled_from(values), st.integers(0, 0xFFFF))

    return st.tuples(
        st.tuples(st.just((0x0008, 0x0016)), st.just(b"UI"), text(["1.2.840.10008.5.1.4.1.1.2"])),
        st.tuples(st.just((0x0028, 0x0002)), st.just(b"US"), number([1, 3, 0, 4])),
        st.tuples(st.just((0x0028, 0x0004)), st.just(b"CS"),
                  text(["MONOCHROME2", "RGB", "YBR_FULL_422", "PALETTE COLOR", ""])),
        st.tuples(st.just((0x0028, 0x0008)), st.just(b"IS"),
                  text(["1", "2", "1000", "2147483647", "4294967296", "-1", "0", "1A", ""])),
        st.tuples(st.just((0x0028, 0x0010)), st.just(b"US"), number([0, 1, 8, 64, 65535])),
        st.tuples(st.just((0x0028, 0x0011)), st.just(b"US"), number([0, 1, 8, 64, 65535])),
        st.tuples(st.just((0x0028, 0x0100)), st.just(b"US"), number([1, 8, 16, 32, 0, 64])),
    ).map(list)  # fmt: skip


def _encode(implicit: bool, order: str, tag: tuple[int, int], vr: bytes, value) -> bytes:
    if isinstance(value, int):
        value = struct.pack(order + "H", value)
    if implicit:
        return struct.pack(order + "HHL", *tag, len(value)) + value
    return struct.pack(order + "HH2sH", *tag, vr, len(value)) + value


@st.composite
def _pixel_data(draw, implicit: bool, order: str, *, encapsulated: bool) -> bytes:
    data = bytes(draw(st.integers(0, 4096)))
    if encapsulated:
        fragments = draw(st.lists(st.binary(max_size=64), max_size=4))
        items = [struct.pack("<HHL", 0xFFFE, 0xE000, len(f)) + f for f in [b"", *fragments]]
        data = b"".join(items) + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    length = draw(st.one_of(st.just(len(data)), st.sampled_from(_ADVERSE_LENGTHS)))
    if encapsulated:
        length = 0xFFFFFFFF
    if implicit:
        return struct.pack(order + "HHL", 0x7FE0, 0x0010, length) + data
    return struct.pack(order + "HH2sHL", 0x7FE0, 0x0010, b"OB", 0, length) + data


@st.composite
def _elements(draw, implicit: bool, order: str) -> bytes:
    group, element = draw(st.sampled_from(_TAGS))
    value = draw(
        st.one_of(
            st.binary(max_size=16),
            st.integers(0, 2**32 - 1).map(lambda n: str(n).encode() + b" " * (len(str(n)) % 2)),
            st.integers(0, 0xFFFF).map(lambda n: struct.pack(order + "H", n)),
        )
    )
    length = draw(st.one_of(st.just(len(value)), st.sampled_from(_ADVERSE_LENGTHS)))
    if implicit or group == 0xFFFE:
        return struct.pack(order + "HHL", group, element, length) + value
    vr = draw(st.sampled_from(_VRS))
    if vr in _LONG_VRS:
        return struct.pack(order + "HH2sHL", group, element, vr, 0, length) + value
    return struct.pack(order + "HH2sH", group, element, vr, length & 0xFFFF) + value


def check_header_parser(max_examples: int) -> None:
    """Run the property over ``max_examples`` generated headers (called under a memory cap)."""
    from birdview.core.io._dicom_header import scan_file

    @settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(dicom_headers())
    def parse(data: bytes) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "generated.dcm")
            with open(path, "wb") as handle:
                handle.write(data)
            started = time.monotonic()
            try:
                header = scan_file(path)
            except VolumeReadError as exc:
                message = str(exc)
                assert message.startswith(f"Unable to read {path!r} as "), message
                assert " object at 0x" not in message and "\n" not in message, message
                # Running out of memory means something was allocated as the file declared.
                assert "MemoryError" not in message, message
            else:
                assert header.rows > 0 and header.cols > 0 and len(header.frames) >= 1
            assert time.monotonic() - started < 2.0  # a few KB of header: milliseconds

    parse()


_CAPPED_PROPERTY = """
import resource, sys
from tests.core.test_fuzz import check_header_parser
import birdview.core.io.dicom
with open("/proc/self/status") as status:
    used = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (used + 256 * 1024**2, resource.RLIM_INFINITY))
check_header_parser(int(sys.argv[1]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux's")
@pytest.mark.timeout(600)
def test_the_header_parser_on_generated_headers_under_a_memory_cap():
    """Hostile lengths (4 GB elements, undefined lengths, huge frame counts) must not make the
    parser allocate in proportion: the child has 256 MiB above its imports."""
    examples = os.environ.get("BIRDVIEW_FUZZ_EXAMPLES", "300")
    done = subprocess.run(
        [sys.executable, "-c", _CAPPED_PROPERTY, examples],
        capture_output=True, text=True, timeout=580, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
