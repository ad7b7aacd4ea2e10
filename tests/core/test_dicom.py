"""DICOM reading on real files: series grouping, slice order, geometry, values, warnings."""

from __future__ import annotations

import logging
import os
import random
import shutil
import uuid

import numpy as np
import pydicom
import pytest

from birdview.core.errors import LoadCancelled
from birdview.core.io.dicom import (
    TagRow,
    dicom_tag_rows,
    load_dicom,
    looks_like_dicom,
    read_dicom_slice,
    read_dicomdir,
    scan_dicom,
)
from birdview.core.volume import SliceSource
from tests.core.dicom_files import (
    DATA_STORE,
    MR_DIR,
    MULTIFRAME,
    PYDICOM_FILES,
    TOTALSEG,
    files_in,
    only_entry,
)

pytestmark = pytest.mark.timeout(60)


def _positions_along_normal(volume) -> np.ndarray:
    """IPP of each loaded slice, read back with pydicom, projected on the volume's normal."""
    points = [
        [float(v) for v in pydicom.dcmread(s.path, stop_before_pixels=True).ImagePositionPatient]
        for s in volume.sources
    ]
    return np.array(points) @ volume.slice_normal


# -- the real CT: empty UIDs, JPEG 2000 ------------------------------------------------------


@pytest.fixture(scope="module")
def totalseg():
    entry = only_entry(files_in(TOTALSEG))
    return entry, load_dicom(entry)


def test_totalseg_with_empty_uids_is_one_series_of_20(totalseg):
    entry, volume = totalseg
    assert entry.kind == "dicom"
    assert entry.n_slices == 20
    assert len(entry.paths) == 20
    assert volume.shape == (20, 512, 512)
    assert volume.voxels.dtype == np.int16


def test_totalseg_geometry_follows_positions(totalseg):
    _, volume = totalseg
    assert volume.spacing_mm == pytest.approx((0.9765625, 0.9765625, 2.0))
    assert np.allclose(volume.direction, np.eye(3))
    assert volume.has_geometry
    assert volume.origin_lps_mm[2] == pytest.approx(-804.5)
    z = [volume.index_to_lps((0, 0, k))[2] for k in range(20)]
    assert np.allclose(np.diff(z), 2.0)
    assert np.allclose(np.diff(_positions_along_normal(volume)), 2.0)


def test_totalseg_values_are_hounsfield_and_window_comes_from_the_tags(totalseg):
    _, volume = totalseg
    assert volume.voxels.min() == -1024  # air outside the body, after RescaleIntercept -1024
    assert 1000 < volume.voxels.max() < 3072
    assert np.median(volume.voxels[10]) < -500  # most of a body slice is air around it
    middle = pydicom.dcmread(volume.sources[10].path, stop_before_pixels=True)
    assert middle["WindowCenter"].VM == 2  # two windows stored: the first one is used
    assert volume.window == (float(middle.WindowCenter[0]), float(middle.WindowWidth[0]))
    assert volume.modality == "CT"
    assert volume.metadata["body_part"] == "PARTIALBODY"
    assert volume.warnings == ()


def test_totalseg_first_slice_alone_matches_the_volume(totalseg):
    entry, volume = totalseg
    for index in (0, 19):
        alone = read_dicom_slice(entry, index)
        assert alone.dtype == volume.voxels.dtype
        assert np.array_equal(alone, volume.voxels[index])


def test_file_order_does_not_change_the_series(totalseg):
    entry, volume = totalseg
    shuffled = files_in(TOTALSEG)
    random.Random(7).shuffle(shuffled)
    again = only_entry(shuffled)
    assert again.key == entry.key
    assert again.paths == entry.paths


# -- the coronal MR: order by position, not by name ------------------------------------------


def test_mr_under_shuffled_names_loads_like_the_originals(tmp_path):
    originals = files_in(MR_DIR)
    reference = load_dicom(only_entry(originals))
    names = [uuid.uuid4().hex for _ in originals]
    random.Random(3).shuffle(names)
    copies = []
    for path, name in zip(originals, names, strict=True):
        copies.append(str(tmp_path / name))
        shutil.copy(path, copies[-1])
    volume = load_dicom(only_entry(copies))
    assert np.array_equal(volume.voxels, reference.voxels)
    assert volume.spacing_mm == pytest.approx(reference.spacing_mm)
    assert volume.origin_lps_mm == pytest.approx(reference.origin_lps_mm)
    assert np.allclose(np.diff(_positions_along_normal(volume)), 2.0, atol=1e-3)
    # Coronal: rows run along +x, columns along -z, and slices step along the normal (±y).
    assert np.allclose(np.abs(volume.slice_normal), (0, 1, 0))
    assert volume.spacing_mm == pytest.approx((0.234375, 0.234375, 2.0), abs=1e-4)


def test_mr_display_strings_and_metadata():
    entry = only_entry(files_in(MR_DIR))
    assert entry.patient == "DOE J1 (583295)"
    assert entry.study == "2017-07-16 LEFT WRIST"
    assert entry.modality == "MR"
    assert entry.series_number == 107
    assert "583295" not in entry.key and len(entry.key) == 8
    volume = load_dicom(entry)
    assert volume.metadata["patient_id"] == "583295"
    assert volume.metadata["study_description"] == "LEFT WRIST"
    assert set(volume.metadata) == {
        "patient_name", "patient_id", "study_date", "study_description", "series_description",
        "series_number", "body_part", "manufacturer", "institution",
    }  # fmt: skip


def test_no_patient_data_in_the_logs(caplog, tmp_path):
    caplog.set_level(logging.DEBUG, logger="birdview")
    paths = [str(shutil.copy(path, tmp_path)) for path in files_in(MR_DIR)]
    with open(paths[3], "r+b") as file:
        file.truncate(os.path.getsize(paths[3]) - 100)
    entries, problems = scan_dicom(paths)
    load_dicom(entries[0])
    assert problems and "truncated" in problems[0].message
    assert caplog.records, "the reader should log its scans and loads"
    for forbidden in ("DOE", "583295", "MEMORIAL"):
        assert forbidden not in caplog.text
        assert forbidden not in problems[0].message


def test_progress_is_reported_per_slice_and_cancel_stops_the_load():
    entry = only_entry(files_in(MR_DIR))
    calls = []
    load_dicom(entry, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(k, 16) for k in range(1, 17)]
    with pytest.raises(LoadCancelled):
        load_dicom(entry, progress=lambda *done: calls.append(done), cancel=lambda: len(calls) > 20)
    with pytest.raises(LoadCancelled):
        scan_dicom(files_in(MR_DIR), cancel=lambda: True)


# -- multi-frame --------------------------------------------------------------------------


CT0012 = [
    "CT0012.fragmented_no_bot_jpeg_baseline.51.dcm",
    "CT0012.fragmented_no_bot_jpeg_lossless.70.dcm",
    "CT0012.fragmented_no_bot_jpeg_ls.80.dcm",
    "CT0012.not_fragmented_bot_jpeg_ls.80.dcm",
    "CT0012.not_fragmented_bot_rle.dcm",
    "CT0012.not_fragmented_no_bot_rle.dcm",
]


@pytest.mark.parametrize("name", CT0012)
def test_enhanced_ct_is_one_entry_of_two_frames(name):
    entry = only_entry([os.path.join(MULTIFRAME, name)])
    volume = load_dicom(entry)
    assert entry.n_slices == 2
    assert volume.shape == (2, 512, 512)
    assert {s.frame for s in volume.sources} == {0, 1}
    assert volume.has_geometry
    assert volume.window is not None  # from the functional groups' Frame VOI LUT


def test_enhanced_ct_lossless_variants_agree_voxel_for_voxel():
    lossless = [name for name in CT0012 if "baseline" not in name]
    volumes = [load_dicom(only_entry([os.path.join(MULTIFRAME, name)])) for name in lossless]
    for volume in volumes[1:]:
        assert np.array_equal(volume.voxels, volumes[0].voxels)
    assert volumes[0].voxels.min() == -1024
    # Frames are sorted along the normal, from per-frame Plane Position: one slice step apart.
    positions = [volumes[0].index_to_lps((0, 0, k)) for k in range(2)]
    assert np.linalg.norm(positions[1] - positions[0]) == pytest.approx(volumes[0].spacing_mm[2])


def test_us_rgb_cine_keeps_frame_order_and_reads_single_frames():
    path = os.path.join(MULTIFRAME, "IM00001.fragmented_no_bot_jpeg_baseline.50.dcm")
    entry = only_entry([path])
    volume = load_dicom(entry)
    assert volume.voxels.shape == (8, 240, 320, 3)
    assert volume.voxels.dtype == np.uint8
    assert [s.frame for s in volume.sources] == list(range(8))
    assert not volume.has_geometry
    assert volume.window is None
    frames = [read_dicom_slice(entry, index) for index in range(8)]
    for index, frame in enumerate(frames):
        assert np.array_equal(frame, volume.voxels[index])
    assert not np.array_equal(frames[0], frames[4])  # a moving heart: frames differ
    # pydicom converts YBR_FULL to RGB; the reader decodes JPEG with pylibjpeg (see
    # _dicom_pixels: gdcm's JPEG codec can abort the process), and lossy decoders differ a bit.
    reference = pydicom.pixels.pixel_array(path, decoding_plugin="pylibjpeg")
    assert np.array_equal(volume.voxels, reference)


# -- values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        os.path.join(PYDICOM_FILES, "dicomdirtests", "77654033", "CR1", "6154"),
        os.path.join(DATA_STORE, "RG3_UNCR.dcm"),
    ],
)
def test_monochrome1_is_inverted_after_rescale(path):
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    stored = ds.pixel_array.astype(np.float64)
    rescaled = stored * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
    expected = rescaled.max() + rescaled.min() - rescaled
    volume = load_dicom(only_entry([path]))
    assert np.allclose(volume.voxels[0], expected, atol=1e-3)
    # Brighter now means lower stored value: the two are perfectly anti-correlated.
    assert np.corrcoef(volume.voxels[0].ravel(), stored.ravel())[0, 1] == pytest.approx(-1)


def test_palette_colour_becomes_rgb():
    path = os.path.join(PYDICOM_FILES, "examples_palette.dcm")
    ds = pydicom.dcmread(path)
    expected = pydicom.pixels.apply_color_lut(ds.pixel_array, ds)
    volume = load_dicom(only_entry([path]))
    assert volume.voxels.shape == (1, 350, 800, 3)
    assert volume.voxels.dtype == np.uint8
    assert np.array_equal(volume.voxels[0], (expected >> 8).astype(np.uint8))


def test_fractional_rescale_gives_float32():
    path = os.path.join(DATA_STORE, "MR2_UNCI.dcm")
    ds = pydicom.dcmread(path)
    assert float(ds.RescaleSlope) != 1.0
    volume = load_dicom(only_entry([path]))
    assert volume.voxels.dtype == np.float32
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert np.allclose(volume.voxels[0], expected, rtol=1e-6)


# -- tags, DICOMDIR, sniffing -----------------------------------------------------------------


def test_tag_rows_list_the_header_without_pixels():
    rows = dicom_tag_rows(SliceSource(os.path.join(MR_DIR, "MR01.dcm")))
    assert all(isinstance(row, TagRow) for row in rows)
    by_tag = {row.tag: row for row in rows}
    assert by_tag["(0010,0020)"].value == "583295"
    assert by_tag["(0010,0020)"].name == "Patient ID"
    assert by_tag["(0002,0010)"].vr == "UI"  # file meta comes along
    assert "(7FE0,0010)" not in by_tag
    assert all(len(row.value) <= 200 for row in rows)


def test_tag_rows_of_an_enhanced_frame_show_that_frame_only():
    path = os.path.join(MULTIFRAME, "CT0012.not_fragmented_bot_rle.dcm")
    rows = dicom_tag_rows(SliceSource(path, frame=1))
    per_frame = next(i for i, row in enumerate(rows) if row.tag == "(5200,9230)")
    assert rows[per_frame].value == "<2 items>"
    item = rows[per_frame + 1]
    assert (item.name, item.depth) == ("Item 2", rows[per_frame].depth + 1)
    nested = [row for row in rows[per_frame + 2 :] if row.depth > item.depth]
    assert any(row.name == "Image Position (Patient)" for row in nested)
    assert not any(row.name == "Item 1" and row.depth == item.depth for row in rows[per_frame:])
    assert any(row.tag == "(5200,9229)" for row in rows)  # shared groups


def test_dicomdir_lists_its_images():
    path = os.path.join(PYDICOM_FILES, "dicomdirtests", "DICOMDIR")
    images = read_dicomdir(path)
    assert len(images) == 31  # the IMAGE records
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in images)
    entries, problems = scan_dicom(images)
    assert problems == []
    assert sum(e.n_slices for e in entries) == 31


def test_dicomdir_finds_files_copied_in_lower_case(tmp_path):
    source = os.path.join(PYDICOM_FILES, "dicomdirtests")
    shutil.copy(os.path.join(source, "DICOMDIR"), tmp_path / "DICOMDIR")
    for folder in ("77654033", "98892001", "98892003"):
        shutil.copytree(os.path.join(source, folder), tmp_path / folder.lower())
    images = read_dicomdir(str(tmp_path / "DICOMDIR"))
    assert len(images) == 31 and all(os.path.isfile(p) for p in images)


def test_looks_like_dicom(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    assert looks_like_dicom(os.path.join(MR_DIR, "MR01.dcm"))
    assert looks_like_dicom(files_in(TOTALSEG)[0])
    assert looks_like_dicom(os.path.join(PYDICOM_FILES, "ExplVR_BigEndNoMeta.dcm"))  # no preamble
    assert looks_like_dicom(os.path.join(PYDICOM_FILES, "rtstruct.dcm"))  # no preamble, implicit
    assert not looks_like_dicom(os.path.join(MR_DIR, "LICENSE.txt"))
    assert not looks_like_dicom(os.path.join(PYDICOM_FILES, "zipMR.gz"))
    assert not looks_like_dicom(str(tmp_path / "empty"))
    assert not looks_like_dicom(str(tmp_path / "missing"))
    assert not looks_like_dicom(str(tmp_path))


def test_rt_dose_absolute_frame_offsets_give_the_same_grid(tmp_path):
    """Grid Frame Offset Vector may be relative (first value 0) or absolute z positions."""
    original = os.path.join(PYDICOM_FILES, "rtdose.dcm")
    ds = pydicom.dcmread(original)
    z0 = float(ds.ImagePositionPatient[2])
    ds.GridFrameOffsetVector = [z0 + float(o) for o in ds.GridFrameOffsetVector]
    absolute = str(tmp_path / "rtdose_absolute.dcm")
    ds.save_as(absolute)
    relative_volume = load_dicom(only_entry([original]))
    absolute_volume = load_dicom(only_entry([absolute]))
    assert relative_volume.shape[0] == 15
    np.testing.assert_allclose(absolute_volume.origin_lps_mm, relative_volume.origin_lps_mm)
    np.testing.assert_allclose(absolute_volume.spacing_mm, relative_volume.spacing_mm)
    assert absolute_volume.spacing_mm[2] == pytest.approx(5.0)
    np.testing.assert_array_equal(absolute_volume.voxels, relative_volume.voxels)
