"""Mutated bytes of real DICOM, NIfTI and PNG files: only VolumeReadError may escape, and fast.

Each example writes a damaged copy of a real file (truncated, bytes flipped, a length field
overwritten with a huge value, bytes inserted or deleted) and opens it the way the viewer does.
"""

from __future__ import annotations

import gzip
import os
import tempfile
import time
from pathlib import Path

import nibabel.testing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from birdview.core.errors import VolumeReadError
from birdview.core.io import load, scan
from tests.conftest import SHARED_DATA

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
        assert time.monotonic() - started < MAX_SECONDS
