"""Hostile and broken inputs end fast, in bounded memory, with one message naming file and cause.

Every file here is crafted by the test. The bombs run in a child process whose address space
is capped (RLIMIT_AS) a little above what the imports took: a reader that allocated anything in
proportion to what a file declares would die there of MemoryError instead of giving its message.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

from birdview.core.errors import VolumeReadError
from birdview.core.io import _limits, _sources, load, raster, scan
from birdview.core.io._paths import MAX_FOLDER_DEPTH
from birdview.core.io.dicom import scan_dicom
from tests.conftest import REPO

pytestmark = pytest.mark.timeout(120)

LINUX = sys.platform.startswith("linux")
PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
# Seconds a hostile input may take; the readers take well under one.
FAST_S = 10.0
MiB = 1024**2


# -- crafting files ----------------------------------------------------------------------------


def dicom_bytes(
    *,
    rows: int = 64,
    cols: int = 64,
    frames: int | str | None = None,
    bits: int = 16,
    pixel_data: bytes | None = None,
    syntax: str = ExplicitVRLittleEndian,
) -> bytes:
    """A small CT image file; ``pixel_data`` defaults to one frame of zeros."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CT"
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, cols, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.PixelData = bytes(rows * cols * bits // 8) if pixel_data is None else pixel_data
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def deflated_dicom(
    path: Path, *, rows: int, cols: int, frames: int, pixel_mib: int, trailing_mib: int = 0
) -> None:
    """A deflated 16-bit file whose pixel data inflates to ``pixel_mib`` MiB of zeros, and
    then a trailing private element of ``trailing_mib`` MiB.

    Blocks of zeros are deflated once, flushed to a byte boundary, and repeated: the file is
    written in milliseconds however far it inflates.
    """
    meta = Dataset()
    meta.file_meta = FileMetaDataset()
    meta.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    meta.file_meta.MediaStorageSOPClassUID = CTImageStorage
    meta.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    header = dicom_bytes(rows=rows, cols=cols, frames=frames, pixel_data=b"")
    plain = pydicom.dcmread(io.BytesIO(header))
    del plain.PixelData
    body = _explicit_little()
    pydicom.filewriter.write_dataset(body, plain)
    element = struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OW", 0, pixel_mib * MiB)
    trailer = struct.pack("<HH2sHL", 0xFFFB, 0x0010, b"OB", 0, trailing_mib * MiB)
    with open(path, "wb") as out:
        head = _explicit_little()
        pydicom.filewriter.write_file_meta_info(head, meta.file_meta, enforce_standard=True)
        out.write(b"\0" * 128 + b"DICM" + head.getvalue())
        out.write(_flushed(body.getvalue() + element))
        out.write(_zero_blocks(pixel_mib))
        if trailing_mib:
            out.write(_flushed(trailer) + _zero_blocks(trailing_mib))
        out.write(b"\x03\x00")  # an empty final block ends the stream


def _explicit_little() -> DicomBytesIO:
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, False
    return out


def _flushed(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)


def _zero_blocks(mib: int) -> bytes:
    return _flushed(bytes(MiB)) * mib


def tiff_bomb(path: Path, *, pages: int, width: int, height: int) -> None:
    """A grey TIFF of ``pages`` pages that all point at one deflated strip of zeros."""
    strip = zlib.compress(bytes(width * height), 9)
    data = bytearray(b"II*\x00" + struct.pack("<L", 8 + len(strip)) + strip)
    entries = [
        (256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 8), (262, 3, 1),
        (273, 4, 8), (277, 3, 1), (278, 4, height), (279, 4, len(strip)),
    ]  # fmt: skip
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:  # kind 3: SHORT, padded to 4 bytes; 4: LONG
        ifd += struct.pack("<HHL", tag, kind, 1) + struct.pack(
            "<HH" if kind == 3 else "<L", value, *[0][: kind == 3]
        )
    for number in range(pages):
        following = len(data) + len(ifd) + 4 if number + 1 < pages else 0
        data += ifd + struct.pack("<L", following)
    path.write_bytes(bytes(data))


def nested_folders(root: Path, depth: int) -> Path:
    """``depth`` folders named "d", each inside the last (os.makedirs would recurse)."""
    folder = root
    for _ in range(depth):
        folder = folder / "d"
        folder.mkdir()
    return folder


@pytest.fixture
def deep_tmp_path(tmp_path):
    """``tmp_path``, emptied bottom-up afterwards: pytest's own clean-up (shutil.rmtree)
    recurses, and a later session would fail on a thousand nested folders."""
    yield tmp_path
    for folder, subfolders, files in _bottom_up(tmp_path):
        for name in files:
            os.unlink(os.path.join(folder, name))
        for name in subfolders:
            os.rmdir(os.path.join(folder, name))


def _bottom_up(root: Path):
    stack, order = [str(root)], []
    while stack:
        folder = stack.pop()
        entries = list(os.scandir(folder))
        subfolders = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
        order.append((folder, subfolders, [e.name for e in entries if e.name not in subfolders]))
        stack += [os.path.join(folder, name) for name in subfolders]
    return reversed(order)


# -- running a reader under a memory cap -------------------------------------------------------

_CAPPED = """
import json, resource, sys, time
from birdview.core.info import describe_path
import birdview.core.io.dicom, birdview.core.io.raster, PIL.Image, pydicom.pixels
with open("/proc/self/status") as status:
    used = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (used + int(sys.argv[2]), resource.RLIM_INFINITY))
started = time.monotonic()
report = describe_path(sys.argv[1])
report["seconds"] = time.monotonic() - started
print(json.dumps(report))
"""


def describe_capped(path: Path, headroom_bytes: int = 384 * MiB) -> dict:
    """`describe_path` (what ``birdview info`` prints) in a child whose address space is capped
    ``headroom_bytes`` above what its imports took."""
    done = subprocess.run(
        [sys.executable, "-c", _CAPPED, str(path), str(headroom_bytes)],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    return json.loads(done.stdout)


def only_message(report: dict) -> str:
    assert report["series"] == [], report["series"]
    (error,) = report["errors"]
    return error["message"]


# -- declared sizes: frames, pages, inflated bytes ---------------------------------------------

needs_linux = pytest.mark.skipif(not LINUX, reason="RLIMIT_AS and /proc are Linux's")


@needs_linux
def test_frame_count_bomb_is_refused_before_any_per_frame_work(tmp_path):
    path = tmp_path / "frames.dcm"
    path.write_bytes(dicom_bytes(frames=2**31 - 1))
    assert path.stat().st_size < 10_000
    report = describe_capped(path)
    assert only_message(report) == (
        f"Unable to read {str(path)!r} as its header declares 2147483647 frames of 64×64 pixels "
        "(16.0 TiB) but its pixel data holds 8.0 KiB (1 frame); the header is damaged"
    )
    assert report["seconds"] < FAST_S


@needs_linux
def test_more_frames_than_a_volume_has_are_refused_before_bookkeeping(tmp_path):
    # Consistent: a million 1×1 frames are a megabyte of pixels, but half a gigabyte and
    # seconds of per-frame bookkeeping.
    path = tmp_path / "specks.dcm"
    path.write_bytes(dicom_bytes(rows=1, cols=1, bits=8, frames=10**6, pixel_data=bytes(10**6)))
    report = describe_capped(path, headroom_bytes=256 * MiB)
    assert only_message(report) == (
        f"Unable to read {str(path)!r} as its header declares 1000000 frames, more than the "
        "100000 BirdView opens"
    )
    assert report["seconds"] < FAST_S


def test_more_frames_than_compressed_fragments_is_refused(tmp_path):
    frame = bytes([0, 0, 0, 0, 64, 0, 0, 0] + [0] * 56) + bytes([129, 0] * 64)  # RLE, 1 segment
    items = struct.pack("<HHL", 0xFFFE, 0xE000, 0)
    items += struct.pack("<HHL", 0xFFFE, 0xE000, len(frame)) + frame
    items += struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    path = tmp_path / "rle.dcm"
    path.write_bytes(dicom_bytes(rows=8, cols=16, bits=8, frames=1000, syntax=RLELossless,
                                 pixel_data=items))  # fmt: skip
    (problem,) = scan_dicom([str(path)])[1]
    assert problem.message.endswith(
        "as its header declares 1000 frames of 8×16 pixels but its compressed pixel data holds "
        "1 fragment(s), and each frame needs one; the header is damaged"
    )


def test_millions_of_empty_fragments_are_refused_in_seconds(tmp_path):
    count = 2_000_000  # 16 MB of item headers, one empty fragment per declared frame
    items = struct.pack("<HHL", 0xFFFE, 0xE000, 0) * (count + 1)
    items += struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    path = tmp_path / "fragments.dcm"
    path.write_bytes(dicom_bytes(rows=8, cols=8, bits=8, frames=count, syntax=RLELossless,
                                 pixel_data=items))  # fmt: skip
    started = time.monotonic()
    (problem,) = scan_dicom([str(path)])[1]
    assert time.monotonic() - started < FAST_S
    assert problem.message.endswith(
        "as its header declares 2000000 frames, more than the 100000 BirdView opens"
    )


@needs_linux
def test_tiff_page_bomb_is_refused_by_the_available_memory(tmp_path):
    path = tmp_path / "pages.tif"
    tiff_bomb(path, pages=3000, width=2048, height=2048)  # 12 GiB of pixels in 0.3 MB
    assert path.stat().st_size < 1_000_000
    report = describe_capped(path)
    message = only_message(report)
    assert message.startswith(
        f"Unable to read {str(path)!r} as its 3000 pages of 2048×2048 pixels would need 11.8 GiB "
        "of memory but only "
    )
    assert report["seconds"] < FAST_S


def test_a_tiff_with_too_many_pages_is_refused_while_counting(tmp_path, monkeypatch):
    monkeypatch.setattr(raster, "MAX_PAGES", 50)
    path = tmp_path / "pages.tif"
    tiff_bomb(path, pages=51, width=8, height=8)
    (problem,) = scan(path).problems
    assert problem.message == (
        f"Unable to read {str(path)!r} as it holds more than 50 pages, more than BirdView opens"
    )
    tiff_bomb(path, pages=50, width=8, height=8)
    assert [entry.n_slices for entry in scan(path).entries] == [50]


def test_a_tiff_stack_loads_into_one_array(tmp_path):
    path = tmp_path / "pages.tif"
    tiff_bomb(path, pages=40, width=64, height=32)
    (entry,) = scan(path).entries
    volume = load(entry)
    assert volume.voxels.shape == (40, 32, 64) and not volume.voxels.any()


@needs_linux
def test_deflated_file_that_declares_more_than_memory_is_refused(tmp_path):
    path = tmp_path / "deflated.dcm"
    deflated_dicom(path, rows=512, cols=512, frames=2048, pixel_mib=1024)  # 1 GiB, 1 MB file
    assert path.stat().st_size < 2_000_000
    report = describe_capped(path)
    message = only_message(report)
    assert message.startswith(
        f"Unable to read {str(path)!r} as its 2048 frames of 512×512 pixels would need 1.0 GiB "
        "of memory but only "
    )
    assert report["seconds"] < FAST_S


@needs_linux
def test_deflated_file_inflates_only_the_pixels_its_header_needs(tmp_path):
    # One 512×512 frame, then 1 GiB more of deflated zeros: pydicom alone inflates all of it.
    path = tmp_path / "trailing.dcm"
    deflated_dicom(path, rows=512, cols=512, frames=1, pixel_mib=512, trailing_mib=512)
    report = describe_capped(path, headroom_bytes=256 * MiB)
    assert report["errors"] == []
    assert [series["shape"] for series in report["series"]] == [[1, 512, 512]]
    assert report["seconds"] < FAST_S


def test_deflated_pixel_length_beyond_what_deflate_can_hold_is_refused(tmp_path):
    path = tmp_path / "liar.dcm"
    deflated_dicom(path, rows=8, cols=8, frames=1, pixel_mib=0)
    data = bytearray(path.read_bytes())
    # Re-deflate the dataset with a pixel data length of 4 GB.
    start = data.index(b"DICM") + 4 + 12 + struct.unpack("<L", data[140:144])[0]
    plain = zlib.decompress(bytes(data[start:]), -15)
    at = plain.index(struct.pack("<HH", 0x7FE0, 0x0010))
    plain = plain[:at] + struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OW", 0, 0xFFFFFFF0)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    path.write_bytes(bytes(data[:start]) + compressor.compress(plain) + compressor.flush())
    (problem,) = scan_dicom([str(path)])[1]
    assert "its pixel data declares 4.0 GiB, more than its " in problem.message
    assert problem.message.endswith("of deflated data can hold; the file is damaged")


# -- files that are not files, folders without end ---------------------------------------------

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")


@needs_fifo
@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "name", ["study.dcm", "study.zip", "scan.nii.gz", "picture.png", "DICOMDIR"]
)
def test_a_named_pipe_is_refused_without_reading_it(tmp_path, name):
    pipe = tmp_path / name
    os.mkfifo(pipe)
    with pytest.raises(VolumeReadError) as caught:
        scan(pipe)
    assert (
        str(caught.value)
        == f"Unable to read {str(pipe)!r} as it is not a regular file (it is a named pipe)"
    )


@needs_fifo
@pytest.mark.timeout(20)
def test_named_pipes_in_a_folder_are_listed_as_problems(tmp_path):
    for name in ("a.dcm", "b.nii", "c.tif", "d"):
        os.mkfifo(tmp_path / name)
    (tmp_path / "good.dcm").write_bytes(dicom_bytes())
    catalog = scan(tmp_path)
    assert [entry.n_slices for entry in catalog.entries] == [1]
    messages = sorted(problem.message for problem in catalog.problems)
    assert messages == [
        f"Unable to read {str(tmp_path / name)!r} as it is not a regular file (it is a named pipe)"
        for name in ("a.dcm", "b.nii", "c.tif", "d")
    ]


def test_a_thousand_nested_folders_are_walked_without_recursion(deep_tmp_path):
    tmp_path = deep_tmp_path
    (tmp_path / "top.dcm").write_bytes(dicom_bytes())
    deepest = nested_folders(tmp_path, 1000)
    (deepest / "lost.dcm").write_bytes(dicom_bytes())
    started = time.monotonic()
    catalog = scan(tmp_path)
    assert time.monotonic() - started < FAST_S
    assert [entry.paths for entry in catalog.entries] == [(str(tmp_path / "top.dcm"),)]
    (problem,) = catalog.problems
    limit = tmp_path.joinpath(*["d"] * MAX_FOLDER_DEPTH)
    assert problem.message == (
        f"Unable to read {str(limit)!r} as its subfolders lie more than {MAX_FOLDER_DEPTH} "
        "folders deep, deeper than BirdView searches"
    )


def test_folders_at_the_depth_limit_are_still_read(tmp_path):
    folder = nested_folders(tmp_path, MAX_FOLDER_DEPTH)
    (folder / "deep.dcm").write_bytes(dicom_bytes())
    entries, problems = scan_dicom([str(tmp_path)])
    assert [entry.n_slices for entry in entries] == [1] and problems == []


# -- zip archives ------------------------------------------------------------------------------


def _extraction_folders() -> set[str]:
    return {
        name
        for name in os.listdir(tempfile.gettempdir())
        if name.startswith(f"birdview-zip-{os.getpid()}-")
    }


def test_messages_about_zip_members_name_the_archive_not_a_temporary_folder(tmp_path):
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("series/cut.dcm", dicom_bytes()[:-100])
        zf.writestr("series/notes.dcm", "not an image")
        zf.write(PYDICOM_FILES / "JPEG-lossy.dcm", "series/lossy.dcm")  # fails at load
    catalog = scan(archive)
    shown = {problem.path: problem.message for problem in catalog.problems}
    inside = str(archive) + os.sep + "series" + os.sep
    assert set(shown) == {inside + "cut.dcm", inside + "notes.dcm"}
    assert (
        shown[inside + "notes.dcm"]
        == f"Unable to read {inside + 'notes.dcm'!r} as it is not a DICOM file"
    )
    (entry,) = catalog.entries
    with pytest.raises(VolumeReadError) as caught:
        load(entry)
    assert caught.value.path == inside + "lossy.dcm"
    assert str(caught.value).startswith(
        f"Unable to read {inside + 'lossy.dcm'!r} as its pixel data"
    )
    assert not any("birdview-zip-" in text for text in [*shown, *shown.values(), str(caught.value)])


@pytest.mark.parametrize(
    ("bound", "value", "reason"),
    [
        ("MAX_ZIP_MEMBERS", 3, "it holds 4 files, more than the 3 BirdView opens"),
        (
            "MAX_ZIP_EXTRACTED_BYTES",
            1000,
            r"it would extract to \d+\.\d KiB, more than the 1000 bytes BirdView allows",
        ),
    ],
)
def test_zip_bounds_are_checked_before_anything_is_written(
    tmp_path, monkeypatch, bound, value, reason
):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for number in range(4):
            zf.writestr(f"{number}.dcm", dicom_bytes())
    monkeypatch.setattr(_sources, bound, value)
    before = _extraction_folders()
    with pytest.raises(
        VolumeReadError, match=f"^Unable to read {re.escape(repr(str(archive)))} as {reason}$"
    ):
        scan(archive)
    assert _extraction_folders() == before


def test_a_member_larger_than_it_declares_is_refused_and_nothing_is_left(tmp_path):
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.dcm", dicom_bytes())
    data = bytearray(archive.read_bytes())
    size = struct.pack("<L", len(dicom_bytes()))
    for at in (data.index(size), data.rindex(size)):  # local header and central directory
        data[at : at + 4] = struct.pack("<L", 100)
    archive.write_bytes(bytes(data))
    before = _extraction_folders()
    with pytest.raises(VolumeReadError, match=r"liar\.zip' as the zip archive is damaged"):
        scan(archive)
    assert _extraction_folders() == before


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL and the liveness probe are POSIX")
def test_a_killed_process_leaves_no_extraction_behind_for_long(tmp_path):
    archive = tmp_path / "one.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.dcm", dicom_bytes())
    script = (
        "import os, signal, sys\n"
        "from birdview.core.io import scan\n"
        "catalog = scan(sys.argv[1])\n"
        "print(catalog.keep_alive[0].name, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(archive)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == -signal.SIGKILL
    left = Path(done.stdout.strip())
    assert left.is_dir() and left.name.startswith("birdview-zip-")
    scan(archive)  # the next extraction sweeps the folders of dead processes
    assert not left.exists()


# -- odd real-world files: the message says what is wrong ------------------------------------


def test_empty_pixel_data_says_so(tmp_path):
    # fo-dicom GH1146: pydicom's decoders said "object of type 'NoneType' has no len()".
    path = tmp_path / "empty.dcm"
    path.write_bytes(dicom_bytes(pixel_data=b""))
    (problem,) = scan_dicom([str(path)])[1]
    assert problem.message == (
        f"Unable to read {str(path)!r} as its pixel data is empty, where its header declares "
        "1 frame of 64×64 pixels"
    )


def test_a_sequence_running_past_the_end_of_the_file_says_so(tmp_path):
    # fo-dicom GH177: an undefined-length element that never ends; the message was
    # "it could not be read (OSError)".
    data = bytearray(dicom_bytes(syntax=ImplicitVRLittleEndian))
    at = data.index(struct.pack("<HH", 0x0008, 0x0016), 132)
    data[at:at] = struct.pack("<HHLHHL", 0x0009, 0x1010, 0xFFFFFFFF, 0xFFFE, 0xE000, 0xFFFFFFFF)
    path = tmp_path / "unended.dcm"
    path.write_bytes(bytes(data))
    (problem,) = scan_dicom([str(path)])[1]
    assert problem.message.endswith(
        "as its header is damaged (a sequence runs past the end of the file)"
    )


def test_a_non_conformant_12_bit_jpeg_is_not_blamed_on_a_missing_codec():
    path = str(PYDICOM_FILES / "JPEG-lossy.dcm")
    (entry,), _ = scan_dicom([path])
    with pytest.raises(VolumeReadError) as caught:
        load(entry)
    message = str(caught.value)
    assert "does not support" not in message and "pip install" not in message
    assert "scan start must be zero and scan stop must be 63" in message


def test_a_codec_message_carries_no_object_repr(tmp_path):
    # Pillow said "cannot identify image file <_io.BytesIO object at 0x7f…>".
    items = struct.pack("<HHL", 0xFFFE, 0xE000, 0) + struct.pack("<HHL", 0xFFFE, 0xE000, 0)
    items += struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    path = tmp_path / "hollow.dcm"
    path.write_bytes(
        dicom_bytes(rows=8, cols=8, bits=8, pixel_data=items, syntax=pydicom.uid.JPEGBaseline8Bit)
    )
    (entry,), _ = scan_dicom([str(path)])
    with pytest.raises(VolumeReadError) as caught:
        load(entry)
    assert " object at 0x" not in str(caught.value)
    assert str(caught.value).startswith(
        f"Unable to read {str(path)!r} as its pixel data could not be decoded ("
    )


# -- from the command line, as a user would -------------------------------------------------


@needs_fifo
def test_the_info_command_on_hostile_inputs(deep_tmp_path):
    tmp_path = deep_tmp_path
    frames = tmp_path / "frames.dcm"
    frames.write_bytes(dicom_bytes(frames=2**31 - 1))
    pipe = tmp_path / "pipe.dcm"
    os.mkfifo(pipe)
    deep = tmp_path / "deep"
    deep.mkdir()
    nested_folders(deep, 1000)
    for path in (frames, pipe, deep):
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "birdview", "info", str(path)],
            capture_output=True, text=True, timeout=60, cwd=REPO,
        )  # fmt: skip
        assert time.monotonic() - started < 30
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr, done.stderr[-2000:]
        assert f"Unable to read {str(path)!r}" in done.stdout or str(deep) in done.stdout


# -- the bounds themselves -------------------------------------------------------------------


def test_sizes_are_worded_in_binary_units():
    assert [_limits.format_bytes(n) for n in (0, 1023, 1024, 1536 * MiB, 2**44)] == [
        "0 bytes", "1023 bytes", "1.0 KiB", "1.5 GiB", "16.0 TiB",
    ]  # fmt: skip


def test_a_folder_given_as_a_file_is_named_as_a_folder(tmp_path):
    with pytest.raises(VolumeReadError, match=r"as it is not a regular file \(it is a folder\)$"):
        _limits.check_regular_file(str(tmp_path))
    with pytest.raises(VolumeReadError, match=r"as the file does not exist$"):
        _limits.check_regular_file(str(tmp_path / "gone.dcm"))


@needs_linux
def test_available_memory_honours_an_address_space_limit():
    script = (
        "import resource\n"
        "from birdview.core.io import _limits\n"
        "used = _limits._virtual_size()\n"
        "resource.setrlimit(resource.RLIMIT_AS, (used + 100 * 1024**2, resource.RLIM_INFINITY))\n"
        "print(_limits.available_memory_bytes())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    assert 50 * MiB < int(done.stdout) <= 100 * MiB
