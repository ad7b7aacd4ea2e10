"""The nibabel-based NIfTI reader gives what SimpleITK (ITK's NiftiImageIO) gave: the same
voxels, pixel type, spacing, LPS origin and direction, on every real NIfTI file at hand and on
headers built to hit ITK's rules (sform against qform, units, scaling, vectors, 4D, byte order).

SimpleITK is a test dependency only: the viewer no longer ships it.
"""

from __future__ import annotations

from pathlib import Path

import nibabel
import nibabel.testing
import numpy as np
import pytest
from nibabel.nifti1 import Nifti1Header

from birdview.core.errors import VolumeReadError
from birdview.core.io.nifti import load_nifti, scan_nifti
from tests.conftest import SHARED_DATA

sitk = pytest.importorskip("SimpleITK")

REPO = Path(__file__).resolve().parents[2]
REAL_FILES = sorted(
    {
        *SHARED_DATA.rglob("*.nii"),
        *SHARED_DATA.rglob("*.nii.gz"),
        *Path(nibabel.testing.data_path).glob("*.nii"),
        *Path(nibabel.testing.data_path).glob("*.nii.gz"),
        *(REPO / "resources" / "samples").rglob("*.nii.gz"),
        *(REPO / "resources" / "samples").rglob("*.nii"),
    }
)


def _simpleitk_view(path: Path):
    """What the SimpleITK reader BirdView used to have made of ``path``: the first volume's
    voxels and the geometry padded to 3D, or None where SimpleITK refused the file."""
    reader = sitk.ImageFileReader()
    reader.SetImageIO("NiftiImageIO")
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
        size = reader.GetSize()
        if len(size) > 3:
            reader.SetExtractSize([*size[:3], *([0] * (len(size) - 3))])
            reader.SetExtractIndex([0] * len(size))
        image = reader.Execute()
    except RuntimeError:
        return None
    dim = image.GetDimension()
    direction = np.eye(3)
    direction[:dim, :dim] = np.reshape(image.GetDirection(), (dim, dim))
    return (
        sitk.GetArrayFromImage(image),
        reader.GetNumberOfComponents(),
        [*image.GetSpacing(), 1.0, 1.0][:3],
        [*image.GetOrigin(), 0.0, 0.0][:3],
        direction,
    )


def _assert_same_as_simpleitk(path: Path) -> None:
    expected = _simpleitk_view(path)
    if expected is None:
        with pytest.raises(VolumeReadError):
            load_nifti(scan_nifti(str(path)))
        return
    voxels, components, spacing, origin, direction = expected
    volume = load_nifti(scan_nifti(str(path)))
    if components > 1 and not (components == 3 and voxels.dtype == np.uint8):
        voxels = voxels[..., 0]
    if voxels.ndim == 2 or (voxels.ndim == 3 and components == 3 and voxels.dtype == np.uint8):
        voxels = voxels[np.newaxis]
    assert volume.voxels.dtype == voxels.dtype
    np.testing.assert_array_equal(volume.voxels, voxels)
    if all(np.isfinite(spacing)) and min(spacing) > 0:
        np.testing.assert_allclose(volume.spacing_mm, spacing, rtol=1e-7)
    if volume.has_geometry:
        np.testing.assert_allclose(volume.origin_lps_mm, origin, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(volume.direction, direction, atol=1e-7)


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name)
def test_real_files_match_simpleitk(path):
    _assert_same_as_simpleitk(path)


def test_the_real_files_are_there():
    names = {p.name for p in REAL_FILES}
    assert {"example_ct_sm.nii.gz", "anatomical.nii", "example4d.nii.gz"} <= names
    assert len(REAL_FILES) >= 14


# -- headers built to hit ITK's rules ---------------------------------------------------------

ROTATED = np.array(  # 30° about z, 10° about x, with 0.9 × 1.1 × 2.5 mm voxels and an offset
    [
        [0.779423, -0.541675, 0.075961, -40.5],
        [0.45, 0.938186, -0.131569, 12.25],
        [0.0, 0.191013, 2.462019, -7.0],
        [0, 0, 0, 1],
    ]
)


def _header(shape, dtype, **fields) -> Nifti1Header:
    header = Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header.set_qform(ROTATED, code=1)
    header.set_sform(ROTATED, code=1)
    for key, value in fields.items():
        header[key] = value
    return header


def _write(path: Path, header: Nifti1Header, values: np.ndarray) -> Path:
    header["vox_offset"] = 352
    stored = values.astype(header.get_data_dtype()).tobytes(order="F")
    path.write_bytes(header.binaryblock + b"\0" * 4 + stored)
    return path


def _values(shape, dtype, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(100, 50, shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -3000), min(info.max, 3000), shape).astype(dtype)


def _shifted(matrix, dx=5.0):
    moved = np.array(matrix)
    moved[0, 3] += dx
    return moved


SHEAR = np.array([[1.0, 0.4, 0, 3], [0, 1.0, 0, 4], [0, 0, 2.0, 5], [0, 0, 0, 1]])


def _case(name: str, tmp_path: Path) -> Path:
    shape = (9, 7, 5)
    header = _header(shape, np.int16)
    values = _values(shape, np.int16)
    if name == "qform_only":
        header.set_sform(None, code=0)
    elif name == "sform_only":
        header.set_qform(None, code=0)
        header.set_sform(_shifted(ROTATED), code=2)
    elif name == "no_orientation":
        header.set_qform(None, code=0)
        header.set_sform(None, code=0)
    elif name == "sform_aligned_disagrees":
        header.set_sform(_shifted(ROTATED), code=2)
    elif name == "sform_scanner_disagrees":
        header.set_qform(_shifted(ROTATED, -8), code=2)
    elif name == "sform_tiny_difference":
        header.set_sform(_shifted(ROTATED, 5e-5), code=2)
    elif name == "sform_shear_with_qform":
        header.set_sform(SHEAR, code=2)
    elif name == "sform_shear_alone":
        header.set_qform(None, code=0)
        header.set_sform(SHEAR, code=2)
    elif name == "isotropic_forms_agree":
        iso = np.array(ROTATED)
        iso[:3, :3] /= np.linalg.norm(iso[:3, :3], axis=0)
        header.set_qform(iso, code=2)
        header.set_sform(iso, code=2)
    elif name == "left_handed_negative_pixdim":
        header.set_sform(None, code=0)
        header["pixdim"][0] = -1
        header["pixdim"][1] = -0.9
    elif name in ("no_magic", "pair_magic"):
        header["magic"] = b"" if name == "no_magic" else b"ni1"
    elif name == "metres":
        header.set_xyzt_units("meter")
    elif name == "microns":
        header.set_xyzt_units("micron", "sec")
    elif name == "left_handed_qform":
        header.set_sform(None, code=0)
        flipped = np.array(ROTATED)
        flipped[:, 2] *= -1
        header.set_qform(flipped, code=1)
    elif name == "negative_pixdim":
        header.set_sform(None, code=0)
        header["pixdim"][2] = -1.1
    elif name == "zero_pixdim":
        header["pixdim"][3] = 0
    elif name == "scaled_int16":
        header.set_slope_inter(0.5, -1024)
    elif name == "scaled_float":
        header = _header(shape, np.float32)
        header.set_slope_inter(2.0, 3.0)
        values = _values(shape, np.float32)
    elif name == "zero_slope":
        header["scl_slope"] = 0
        header["scl_inter"] = 5
    elif name == "big_endian":
        header = header.as_byteswapped(">")
    elif name in ("uint8", "int8", "uint16", "int32", "uint32", "int64", "float64"):
        header = _header(shape, np.dtype(name))
        values = _values(shape, np.dtype(name))
    elif name == "rgb24":
        header = _header(shape, nibabel.nifti1.data_type_codes.dtype["RGB"])
        rgb = _values((*shape, 3), np.uint8)
        stored = np.zeros(shape, header.get_data_dtype())
        for i, channel in enumerate("RGB"):
            stored[channel] = rgb[..., i]
        values = stored
    elif name in ("vector3", "vector2_4d", "vector3_uint8"):
        kind = np.uint8 if name == "vector3_uint8" else np.float32
        n_values, t = (2, 3) if name == "vector2_4d" else (3, 1)
        header = _header((*shape, t, n_values), kind, intent_code=1007)
        values = _values((*shape, t, n_values), kind)
    elif name == "four_d":
        header = _header((*shape, 3), np.int16)
        values = _values((*shape, 3), np.int16)
    elif name == "four_d_of_one":
        header = _header((*shape, 1), np.int16)
        values = _values((*shape, 1), np.int16)
    elif name == "five_d":
        header = _header((*shape, 1, 2), np.int16)
        values = _values((*shape, 1, 2), np.int16)
    elif name == "two_d":
        header = _header(shape[:2], np.int16)
        values = _values(shape[:2], np.int16)
    else:
        raise AssertionError(name)
    return _write(tmp_path / f"{name}.nii", header, values)


CASES = [
    "qform_only",
    "sform_only",
    "no_orientation",
    "sform_aligned_disagrees",
    "sform_scanner_disagrees",
    "sform_tiny_difference",
    "sform_shear_with_qform",
    "sform_shear_alone",
    "isotropic_forms_agree",
    "left_handed_negative_pixdim",
    "no_magic",
    "pair_magic",
    "metres",
    "microns",
    "left_handed_qform",
    "negative_pixdim",
    "zero_pixdim",
    "scaled_int16",
    "scaled_float",
    "zero_slope",
    "big_endian",
    "uint8",
    "int8",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "float64",
    "rgb24",
    "vector3",
    "vector3_uint8",
    "four_d",
    "four_d_of_one",
    "five_d",
    "two_d",
]


@pytest.mark.parametrize("name", CASES)
def test_edge_case_headers_match_simpleitk(name, tmp_path):
    path = _case(name, tmp_path)
    _assert_same_as_simpleitk(path)
    _assert_same_as_simpleitk(_gzipped(path))


def _gzipped(path: Path) -> Path:
    import gzip

    target = path.with_suffix(".nii.gz")
    target.write_bytes(gzip.compress(path.read_bytes()))
    return target


def test_the_cases_disagree_where_they_should(tmp_path):
    """The sform/qform cases really differ between the two matrices (nibabel takes the sform,
    ITK the qform when they disagree and the sform is not labelled scanner-anatomical)."""
    path = _case("sform_aligned_disagrees", tmp_path)
    volume = load_nifti(scan_nifti(str(path)))
    np.testing.assert_allclose(volume.origin_lps_mm, [40.5, -12.25, -7.0], atol=1e-4)
    assert not np.allclose(nibabel.load(path).affine, ROTATED)


def test_vector_time_series_shows_first_volume_first_value(tmp_path):
    """A 4D file of 2-vectors: SimpleITK aborts the process on it; BirdView shows the first
    volume's first value (compared with the numbers written, not with SimpleITK)."""
    shape = (9, 7, 5, 3, 2)
    values = _values(shape, np.float32)
    path = _write(tmp_path / "vectors.nii", _header(shape, np.float32, intent_code=1007), values)
    entry = scan_nifti(str(path))
    assert entry.warnings == (
        "the file holds 3 volumes; showing the first",
        "the file holds 2 values per voxel; showing the first",
    )
    volume = load_nifti(entry)
    np.testing.assert_array_equal(volume.voxels, values[..., 0, 0].T)
