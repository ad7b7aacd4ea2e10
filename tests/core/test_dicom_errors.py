"""DICOM reading of bad input: every failure is a `VolumeReadError` that says what is wrong.

The corpus test runs every file of pydicom's and pydicom-data's test sets and of the shared
DICOM data through scan and load.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pydicom
import pytest
from pydicom.pixels import get_decoder

from birdview.core.errors import UnsupportedImageError, VolumeReadError
from birdview.core.io._dicom_file import PixelElement
from birdview.core.io._dicom_header import SCAN_TAGS, _header, describe, scan_file
from birdview.core.io._dicom_walk import walk_header
from birdview.core.io.dicom import dicom_tag_rows, load_dicom, read_dicomdir, scan_dicom
from birdview.core.volume import SliceSource
from tests.core.dicom_files import DATA, DATA_STORE, MR_DIR, PYDICOM_FILES, TOTALSEG

pytestmark = pytest.mark.timeout(60)

CORPUS_ROOTS = [
    PYDICOM_FILES,
    DATA_STORE,
    MR_DIR,
    TOTALSEG,
    os.path.join(DATA, "dicom_multiframe"),
]

# Files with pixel data that cannot become a volume, and why.
UNREADABLE = {
    # Its scan parameters are invalid for sequential JPEG; Pillow and gdcm only say that they
    # do not support 12-bit JPEG, which must not be the message (it reads as a missing codec).
    "JPEG-lossy.dcm": "could not be decoded (pylibjpeg: libjpeg error code '-1038'",
    "JPEG2000-embedded-sequence-delimiter.dcm": "compressed pixel data is damaged (fragment 1",
    "MR_truncated.dcm": "truncated (pixel data ends after 8130 of 8192 bytes)",
    "badVR.dcm": "'Number of Frames'",
    "meta_missing_tsyntax.dcm": "no image size",
    "nested_priv_SQ.dcm": "no image size",
}


def _corpus() -> list[str]:
    paths = []
    for root in CORPUS_ROOTS:
        for folder, _, names in os.walk(root):
            paths += [os.path.join(folder, name) for name in sorted(names)]
    return paths


def _has_pixels(path: str) -> bool:
    try:
        return "PixelData" in pydicom.dcmread(path, force=True)
    except Exception:
        return False


@pytest.mark.parametrize(
    "path", _corpus(), ids=lambda p: os.path.relpath(p, "/").replace("/", "|")[-60:]
)
def test_every_file_loads_or_says_why(path):
    entries, problems = scan_dicom([path])
    assert len(entries) + len(problems) == 1
    name = os.path.basename(path)
    for problem in problems:
        assert problem.path == path
        assert problem.message.startswith(f"Unable to read {path!r} as ")
        assert _has_pixels(path) is False or name in UNREADABLE or "truncated" in problem.message
        if name in UNREADABLE:
            assert UNREADABLE[name] in problem.message
    for entry in entries:
        try:
            volume = load_dicom(entry)
        except VolumeReadError as exc:
            assert name in UNREADABLE, str(exc)
            assert UNREADABLE[name] in str(exc)
            assert exc.path == path
            continue
        assert name not in UNREADABLE
        _check_sane(path, volume)


def _check_sane(path: str, volume) -> None:
    ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
    frames = int(ds.get("NumberOfFrames") or 1)
    assert volume.shape == (frames, ds.Rows, ds.Columns)
    colour = ds.get("SamplesPerPixel", 1) == 3 or ds.PhotometricInterpretation == "PALETTE COLOR"
    assert volume.is_rgb == colour
    if colour:
        assert volume.voxels.dtype == np.uint8
    assert np.isfinite(volume.voxels).all()
    assert all(s > 0 for s in volume.spacing_mm)
    assert [s.path for s in volume.sources] == [path] * frames


def test_the_corpus_is_not_vacuous():
    loadable = [p for p in _corpus() if _has_pixels(p) and os.path.basename(p) not in UNREADABLE]
    assert len(loadable) > 150


# -- truncated, not DICOM, missing ---------------------------------------------------------------


def test_truncated_file_found_by_the_scan(tmp_path):
    target = tmp_path / "MR05.dcm"
    data = open(os.path.join(MR_DIR, "MR05.dcm"), "rb").read()
    target.write_bytes(data[:-5000])
    entries, problems = scan_dicom([str(target)])
    assert entries == []
    assert len(problems) == 1
    assert "MR05.dcm" in problems[0].message
    assert "truncated (pixel data ends after 126072 of 131072 bytes)" in problems[0].message


def test_truncated_after_the_scan_fails_the_load(tmp_path):
    target = tmp_path / "CT_slice.dcm"
    shutil.copy(
        os.path.join(DATA, "dicom_multiframe", "CT1_UNC.explicit_little_endian.dcm"), target
    )
    (entry,), _ = scan_dicom([str(target)])
    with open(target, "r+b") as file:
        file.truncate(os.path.getsize(target) // 2)
    with pytest.raises(VolumeReadError, match=r"CT_slice\.dcm.*truncated") as caught:
        load_dicom(entry)
    assert caught.value.path == str(target)


def test_truncated_compressed_file(tmp_path):
    source = sorted(os.listdir(TOTALSEG))[0]
    target = tmp_path / "cut.dcm"
    data = open(os.path.join(TOTALSEG, source), "rb").read()
    target.write_bytes(data[: len(data) - 20000])
    (problem,) = scan_dicom([str(target)])[1]
    assert "cut.dcm" in problem.message and "truncated" in problem.message


def test_text_file_is_not_dicom(tmp_path):
    note = tmp_path / "notes.txt"
    note.write_text("DICM is not at byte 128 here\n" * 20)
    (problem,) = scan_dicom([str(note)])[1]
    assert problem.message == f"Unable to read {str(note)!r} as it is not a DICOM file"
    with pytest.raises(VolumeReadError, match="it is not a DICOM file"):
        dicom_tag_rows(SliceSource(str(note)))
    with pytest.raises(VolumeReadError, match="it is not a DICOM file"):
        read_dicomdir(str(note))
    with pytest.raises(VolumeReadError, match="MR01.dcm' as it is not a DICOMDIR"):
        read_dicomdir(os.path.join(MR_DIR, "MR01.dcm"))


def test_missing_and_folder_paths(tmp_path):
    entries, problems = scan_dicom([str(tmp_path / "gone.dcm")])
    assert entries == [] and "does not exist" in problems[0].message
    with pytest.raises(VolumeReadError, match="does not exist"):
        dicom_tag_rows(SliceSource(str(tmp_path / "gone.dcm")))


def test_a_file_deleted_after_the_scan(tmp_path):
    for name in ("MR01.dcm", "MR02.dcm"):
        shutil.copy(os.path.join(MR_DIR, name), tmp_path / name)
    (entry,), _ = scan_dicom([str(tmp_path)])
    os.remove(tmp_path / "MR02.dcm")
    with pytest.raises(VolumeReadError, match=r"MR02\.dcm.*does not exist"):
        load_dicom(entry)


def test_a_file_replaced_by_another_size_after_the_scan(tmp_path):
    for name in sorted(os.listdir(MR_DIR)):
        shutil.copy(os.path.join(MR_DIR, name), tmp_path / name)
    (entry,), _ = scan_dicom([str(tmp_path)])
    fourth = entry.reader_data.sources[3].path  # the slice that is 4th along the stack
    shutil.copy(
        os.path.join(DATA, "dicom_multiframe", "CT1_UNC.explicit_little_endian.dcm"), fourth
    )
    with pytest.raises(
        VolumeReadError,
        match="the series is inconsistent: slice 4 is a 512×512 grey image but slice 1 is 256×256",
    ) as caught:
        load_dicom(entry)
    assert caught.value.path == fourth


def test_folder_of_good_and_badfiles_in(tmp_path):
    for name in sorted(os.listdir(MR_DIR)):
        shutil.copy(os.path.join(MR_DIR, name), tmp_path / name)
    (tmp_path / "readme.txt").write_text("not an image")
    shutil.copy(os.path.join(PYDICOM_FILES, "test-SR.dcm"), tmp_path / "report.dcm")
    cut = open(os.path.join(PYDICOM_FILES, "CT_small.dcm"), "rb").read()
    (tmp_path / "cut.dcm").write_bytes(cut[:-1000])
    (tmp_path / "sub").mkdir()
    shutil.copy(os.path.join(PYDICOM_FILES, "rtplan.dcm"), tmp_path / "sub" / "plan.dcm")

    entries, problems = scan_dicom([str(tmp_path)])
    assert [e.n_slices for e in entries] == [16]
    assert load_dicom(entries[0]).shape == (16, 256, 256)
    reasons = {os.path.basename(p.path): p.message for p in problems}
    assert set(reasons) == {"LICENSE.txt", "readme.txt", "report.dcm", "cut.dcm", "plan.dcm"}
    assert "not a DICOM file" in reasons["readme.txt"]
    assert "no pixel data (Comprehensive SR Storage)" in reasons["report.dcm"]
    assert "truncated" in reasons["cut.dcm"]
    assert "no pixel data (RT Plan Storage)" in reasons["plan.dcm"]


# -- no image, no codec ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "sop_class"),
    [
        ("test-SR.dcm", "Comprehensive SR Storage"),
        ("reportsi.dcm", "Basic Text SR Storage"),
        ("rtstruct.dcm", "RT Structure Set Storage"),
        ("waveform_ecg.dcm", "12-lead ECG Waveform Storage"),
        (os.path.join("dicomdirtests", "DICOMDIR"), "Media Storage Directory Storage"),
    ],
)
def test_dicom_without_an_image_is_unsupported(name, sop_class):
    path = os.path.join(PYDICOM_FILES, name)
    with pytest.raises(UnsupportedImageError, match=f"no pixel data \\({sop_class}\\)"):
        scan_file(path)
    (problem,) = scan_dicom([path])[1]
    assert f"it has no pixel data ({sop_class})" in problem.message


@pytest.fixture
def no_jpeg2000_codec(monkeypatch):
    """Make pydicom's JPEG 2000 decoder report its plugins as not installed."""
    decoder = get_decoder(pydicom.uid.JPEG2000Lossless)
    monkeypatch.setattr(decoder, "_available", {})
    monkeypatch.setattr(
        decoder,
        "_unavailable",
        {
            "gdcm": ("gdcm>=3.0.10",),
            "pylibjpeg": ("pylibjpeg>=2.0", "pylibjpeg-openjpeg>=2.0"),
        },
    )


def test_missing_codec_names_the_package_to_install(no_jpeg2000_codec):
    (entry,), problems = scan_dicom(sorted(os.path.join(TOTALSEG, n) for n in os.listdir(TOTALSEG)))
    assert problems == []
    with pytest.raises(VolumeReadError, match="pip install pylibjpeg pylibjpeg-openjpeg") as caught:
        load_dicom(entry)
    assert "its transfer syntax JPEG 2000 Image Compression (Lossless Only) needs a codec" in str(
        caught.value
    )


def test_unknown_transfer_syntax_is_not_supported(tmp_path):
    data = bytearray(open(os.path.join(MR_DIR, "MR01.dcm"), "rb").read())
    implicit = b"1.2.840.10008.1.2\x00"
    at = data.index(implicit)
    data[at : at + len(implicit)] = b"1.2.3.4.5.6.7.8.9\x00"
    (tmp_path / "odd.dcm").write_bytes(bytes(data))
    entries, problems = scan_dicom([str(tmp_path / "odd.dcm")])
    with pytest.raises(
        VolumeReadError, match=r"its transfer syntax 1\.2\.3\.4\.5\.6\.7\.8\.9 is not supported"
    ):
        assert problems == []
        load_dicom(entries[0])


# -- damaged lengths must not allocate or hang -------------------------------------------------


def _element_offset(data: bytes, group: int, element: int) -> int:
    return data.index(struct.pack("<HH", group, element), 132)


def test_absurd_header_length_is_reported_not_allocated(tmp_path):
    # Implicit VR: every element has a 4-byte length. Claim 4 GB for Study Date.
    data = bytearray(open(os.path.join(MR_DIR, "MR01.dcm"), "rb").read())
    at = _element_offset(data, 0x0008, 0x0020)
    data[at + 4 : at + 8] = struct.pack("<L", 0xFFFFFFF0)
    (tmp_path / "huge.dcm").write_bytes(bytes(data))
    entries, problems = scan_dicom([str(tmp_path / "huge.dcm")])
    assert entries == []
    assert "huge.dcm" in problems[0].message


def test_absurd_pixel_length_is_reported_as_truncation(tmp_path):
    data = bytearray(open(os.path.join(PYDICOM_FILES, "CT_small.dcm"), "rb").read())
    at = _element_offset(data, 0x7FE0, 0x0010)
    data[at + 8 : at + 12] = struct.pack("<L", 0xFFFFFFF0)
    (tmp_path / "long.dcm").write_bytes(bytes(data))
    (problem,) = scan_dicom([str(tmp_path / "long.dcm")])[1]
    have = len(data) - (at + 12)
    assert f"truncated (pixel data ends after {have} of 4294967280 bytes)" in problem.message


def test_broken_fragment_marker_is_reported(tmp_path):
    source = os.path.join(PYDICOM_FILES, "MR_small_RLE.dcm")
    data = bytearray(open(source, "rb").read())
    at = _element_offset(data, 0x7FE0, 0x0010)
    item = data.index(b"\xfe\xff\x00\xe0", at + 12 + 8)  # the first fragment after the offset table
    data[item : item + 4] = b"\x12\x34\x56\x78"
    (tmp_path / "broken.dcm").write_bytes(bytes(data))
    (problem,) = scan_dicom([str(tmp_path / "broken.dcm")])[1]
    assert "compressed pixel data is damaged" in problem.message


# -- the fast header walk agrees with pydicom's reader ----------------------------------------


@pytest.mark.parametrize(
    "path", _corpus(), ids=lambda p: os.path.relpath(p, "/").replace("/", "|")[-60:]
)
def test_fast_header_walk_agrees_with_pydicom(path):
    """Where the struct walk takes a file, it must read what pydicom's reader reads."""
    with open(path, "rb") as file:
        head = file.read(1 << 16)
    walked = walk_header(head, os.path.getsize(path), SCAN_TAGS)
    if walked is None:
        return  # declined: pydicom reads it
    ds, pixels = walked
    slow = pydicom.dcmread(path, force=True, stop_before_pixels=True, specific_tags=list(SCAN_TAGS))
    charset = {0x00080005}
    assert set(ds.keys()) - charset == set(slow.keys()) - charset
    assert ds.file_meta.TransferSyntaxUID == slow.file_meta.TransferSyntaxUID
    if pixels is None:
        assert "PixelData" not in pydicom.dcmread(path, force=True)
        return
    keyword, offset, _ = pixels
    tag = {"PixelData": 0x0010, "FloatPixelData": 0x0008, "DoubleFloatPixelData": 0x0009}[keyword]
    order = "<" if ds.original_encoding[1] else ">"
    assert struct.pack(order + "HH", 0x7FE0, tag) in (
        head[offset - 12 : offset - 8],
        head[offset - 8 : offset - 4],
    )
    fast, slow = _outcome(path, ds, pixels), _outcome(path, slow, pixels)
    assert fast == slow


def _outcome(path, ds, pixels):
    """The header and display values read from ``ds``, or the error they make."""
    try:
        header = _header(path, ds, PixelElement(*pixels))
    except VolumeReadError as exc:
        return str(exc)
    return header, describe(header)


def test_fast_header_walk_takes_the_commonfiles_in():
    taken = []
    for path in _corpus():
        with open(path, "rb") as file:
            taken.append(
                walk_header(file.read(1 << 16), os.path.getsize(path), SCAN_TAGS) is not None
            )
    assert sum(taken) > 100


def test_a_damaged_jpeg_does_not_abort_the_process(tmp_path):
    """gdcm's JPEG codec aborts the process (an uncaught C++ exception) on this stream."""
    data = bytearray(open(os.path.join(PYDICOM_FILES, "SC_rgb_jpeg_dcmtk.dcm"), "rb").read())
    data[1870], data[1872] = 0x00, 0x01  # a damaged Huffman table
    path = tmp_path / "damaged.dcm"
    path.write_bytes(bytes(data))
    script = (
        "import sys\n"
        "from birdview.core.errors import VolumeReadError\n"
        "from birdview.core.io.dicom import load_dicom, scan_dicom\n"
        "entries, _ = scan_dicom([sys.argv[1]])\n"
        "try:\n"
        "    print(load_dicom(entries[0]).shape)\n"
        "except VolumeReadError as exc:\n"
        "    print(exc.reason)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.strip()
