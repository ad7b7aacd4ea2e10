"""The NIfTI reader on the real files in ../shared/data and nibabel's test data, checked against
the data README and against nibabel, plus damaged copies of them."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
import time
from pathlib import Path

import nibabel
import nibabel.testing
import numpy as np
import pytest

from birdview.core.errors import LoadCancelled, VolumeReadError
from birdview.core.io.nifti import load_nifti, scan_nifti
from tests.conftest import SHARED_DATA, shared

NIBABEL_DATA = Path(nibabel.testing.data_path)
ALL_NIFTI = sorted(
    [
        *SHARED_DATA.rglob("*.nii"),
        *SHARED_DATA.rglob("*.nii.gz"),
        *NIBABEL_DATA.glob("*.nii"),
        *NIBABEL_DATA.glob("*.nii.gz"),
    ]
)
# nibabel's RAS affine → LPS: flip x and y.
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def _read(path) -> object:
    return load_nifti(scan_nifti(str(path)))


@pytest.mark.parametrize("path", ALL_NIFTI, ids=lambda p: p.name)
def test_every_file_loads_or_says_why(path):
    try:
        entry = scan_nifti(str(path))
        volume = load_nifti(entry)
    except VolumeReadError as exc:
        assert exc.path == str(path)
        assert "\n" not in str(exc) and ".cxx" not in str(exc)  # the gist, not SimpleITK's dump
        return
    assert entry.kind == "nifti" and entry.paths == (str(path),)
    assert entry.patient == "" and entry.study == "" and entry.description == path.name
    assert volume.shape[0] == entry.n_slices
    assert volume.has_geometry and volume.window is None
    assert volume.metadata["series_description"] == path.name


# -- the README's description of the shared files -------------------------------------------


README_FILES = {
    # name: (shape (k, j, i), dtype, spacing, direction in LPS, (min, max))
    ("totalseg", "example_ct_sm.nii.gz"): (
        (30, 101, 122),
        np.int16,
        (3, 3, 3),
        (-1, -1, 1),
        (-1100, 1207),
    ),
    ("totalseg", "example_seg.nii.gz"): (
        (30, 101, 122),
        np.uint8,
        (3, 3, 3),
        (-1, -1, 1),
        (0, 117),
    ),
    ("totalseg", "example_seg_dicom.nii.gz"): (
        (20, 512, 512),
        np.uint8,
        (0.9765625, 0.9765625, 2),
        (1, -1, 1),
        (0, 117),
    ),
    ("totalseg", "example_mr_sm.nii.gz"): (
        (20, 91, 117),
        np.int16,
        (3, 3, 3),
        (1, 1, 1),
        (-47, 833),
    ),
    ("totalseg", "example_seg_mr.nii.gz"): ((20, 91, 117), np.uint8, (3, 3, 3), (1, 1, 1), (0, 49)),
    ("brats_mr", "imagesTr", "BraTS2021_01646.nii.gz"): (
        (104, 160, 160),
        np.float32,
        (1.5, 1.5, 1.5),
        (-1, -1, 1),
        (0, 631.5),
    ),
    ("brats_mr", "labelsTr", "BraTS2021_01646.nii.gz"): (
        (104, 160, 160),
        np.uint8,
        (1.5, 1.5, 1.5),
        (-1, -1, 1),
        (0, 1),
    ),
}


@pytest.mark.parametrize("parts", sorted(README_FILES), ids="/".join)
def test_shared_files_match_the_readme(parts):
    shape, dtype, spacing, axes, (low, high) = README_FILES[parts]
    volume = _read(shared(*parts))
    assert volume.shape == shape and volume.voxels.dtype == dtype
    np.testing.assert_allclose(volume.spacing_mm, spacing, rtol=1e-5)
    np.testing.assert_allclose(volume.direction, np.diag(axes), atol=1e-6)
    assert low <= volume.voxels.min() and volume.voxels.max() <= high


@pytest.mark.parametrize(
    "name", ["example_ct_sm.nii.gz", "example_seg_dicom.nii.gz", "example_mr_sm.nii.gz"]
)
def test_voxels_and_geometry_agree_with_nibabel(name):
    path = shared("totalseg", name)
    volume = _read(path)
    reference = nibabel.load(path)
    np.testing.assert_array_equal(volume.voxels, np.asarray(reference.dataobj).T)
    ijk = np.array(
        [[0, 0, 0], [5, 7, 3], [volume.shape[2] - 1, volume.shape[1] - 1, volume.shape[0] - 1]]
    )
    ras = nibabel.affines.apply_affine(reference.affine, ijk)
    np.testing.assert_allclose(volume.index_to_lps(ijk), ras @ RAS_TO_LPS, atol=1e-3)


def test_modality_and_label_guesses():
    ct = _read(shared("totalseg", "example_ct_sm.nii.gz"))
    assert ct.modality == "CT" and ct.metadata["modality_guessed"] == "true"
    assert "label_map" not in ct.metadata
    mr = _read(shared("totalseg", "example_mr_sm.nii.gz"))
    assert mr.modality == "MR" and "modality_guessed" not in mr.metadata  # from the name
    seg = _read(shared("totalseg", "example_seg.nii.gz"))
    assert seg.modality == "OT" and seg.metadata["label_map"] == "true"
    edema = _read(shared("brats_mr", "labelsTr", "BraTS2021_01646.nii.gz"))
    assert edema.metadata["label_map"] == "true" and int(edema.voxels.sum()) == 17618
    flair = _read(shared("brats_mr", "imagesTr", "BraTS2021_01646.nii.gz"))
    assert flair.modality == "OT" and "label_map" not in flair.metadata
    assert scan_nifti(str(shared("totalseg", "example_ct_sm.nii.gz"))).modality == "CT"


def test_sources_name_each_slice():
    path = str(shared("totalseg", "example_seg_mr.nii.gz"))
    volume = _read(path)
    assert [(s.path, s.frame) for s in volume.sources] == [(path, k) for k in range(20)]


def test_four_dimensional_file_shows_first_volume():
    path = NIBABEL_DATA / "example4d.nii.gz"
    entry = scan_nifti(str(path))
    volume = load_nifti(entry)
    assert entry.warnings == ("the file holds 2 volumes; showing the first",)
    assert volume.warnings == entry.warnings
    np.testing.assert_array_equal(volume.voxels, np.asarray(nibabel.load(path).dataobj)[..., 0].T)


def test_two_dimensional_file_is_one_slice(tmp_path):
    pixels = np.asarray(nibabel.load(shared("totalseg", "example_ct_sm.nii.gz")).dataobj)[:, :, 15]
    path = tmp_path / "slice.nii.gz"
    nibabel.save(nibabel.Nifti1Image(pixels, np.diag([0.8, 0.8, 1, 1])), path)
    volume = _read(path)
    assert volume.shape == (1, 101, 122)
    np.testing.assert_array_equal(volume.voxels[0], pixels.T)
    assert volume.spacing_mm[:2] == pytest.approx((0.8, 0.8))


def test_progress_and_cancel():
    entry = scan_nifti(str(shared("totalseg", "example_seg.nii.gz")))
    calls = []
    load_nifti(entry, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (1, 1)
    with pytest.raises(LoadCancelled):
        load_nifti(entry, cancel=lambda: True)


def test_simpleitk_is_imported_lazily():
    code = (
        "import sys, birdview.core, birdview.core.io.nifti, birdview.core.geometry; "
        "sys.exit('SimpleITK' in sys.modules)"
    )
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True)
    assert result.returncode == 0, "importing birdview.core loaded SimpleITK"


# -- damaged files --------------------------------------------------------------------------


def _failure(path: Path) -> VolumeReadError:
    started = time.perf_counter()
    with pytest.raises(VolumeReadError) as info:
        _read(path)
    assert time.perf_counter() - started < 5
    assert info.value.path == str(path) and path.name in str(info.value)
    return info.value


@pytest.fixture(scope="module")
def ct_bytes() -> bytes:
    return shared("totalseg", "example_ct_sm.nii.gz").read_bytes()


@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.99])
def test_truncated_gzip_is_refused(tmp_path, ct_bytes, fraction):
    path = tmp_path / "cut.nii.gz"
    path.write_bytes(ct_bytes[: int(len(ct_bytes) * fraction)])
    error = _failure(path)
    assert error.reason.startswith(("the gzip stream is truncated", "the file is truncated"))


def test_truncated_uncompressed_file_is_refused(tmp_path, ct_bytes):
    raw = gzip.decompress(ct_bytes)
    path = tmp_path / "cut.nii"
    path.write_bytes(raw[: len(raw) - 1000])
    assert "the file is truncated: the header needs" in str(_failure(path))


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_absurd_dimensions_are_refused_before_reading(tmp_path, ct_bytes, suffix):
    header = bytearray(gzip.decompress(ct_bytes))
    struct.pack_into("<4h", header, 40, 3, 32767, 32767, 32767)  # dim[0..3]
    path = tmp_path / f"huge{suffix}"
    path.write_bytes(gzip.compress(bytes(header)) if suffix == ".nii.gz" else bytes(header))
    assert "32767×32767×32767" in str(_failure(path))


def test_header_claiming_more_than_the_gzip_can_hold(tmp_path, ct_bytes):
    header = bytearray(gzip.decompress(ct_bytes))
    struct.pack_into("<4h", header, 40, 3, 4000, 4000, 60)  # 1.8 GB: under the memory limit
    path = tmp_path / "claims.nii.gz"
    path.write_bytes(gzip.compress(bytes(header)))
    assert "more than a" in str(_failure(path)) and "header is damaged" in str(_failure(path))


def test_other_failures_have_clear_reasons(tmp_path):
    missing = tmp_path / "missing.nii"
    assert _failure(missing).reason == "the file does not exist"
    empty = tmp_path / "empty.nii"
    empty.write_bytes(b"")
    assert _failure(empty).reason == "the file is empty"
    text = tmp_path / "notes.nii"
    text.write_text("not an image at all " * 40)
    assert _failure(text).reason == "it is not a NIfTI file"
    assert "NIfTI-2" in _failure(NIBABEL_DATA / "example_nifti2.nii.gz").reason


def test_damaged_header_is_named(tmp_path, ct_bytes):
    header = bytearray(gzip.decompress(ct_bytes))
    struct.pack_into("<h", header, 70, 999)  # datatype
    path = tmp_path / "badtype.nii"
    path.write_bytes(bytes(header))
    assert "header is damaged" in str(_failure(path))


def test_nibabel_is_imported_lazily():
    code = "import sys, birdview.core, birdview.core.io.nifti; sys.exit('nibabel' in sys.modules)"
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True)
    assert result.returncode == 0, "importing birdview.core loaded nibabel"
