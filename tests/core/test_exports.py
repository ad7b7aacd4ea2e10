"""Exports: JSON corners, the annotated PNG and the DICOM SR, on real studies."""

from __future__ import annotations

import json
from functools import cache

import highdicom as hd
import numpy as np
import pydicom
import pytest
from PIL import Image

from birdview.core import geometry
from birdview.core.box import Box
from birdview.core.display import Window
from birdview.core.exports import (
    NOTICE,
    box_colour,
    export_dicom_sr,
    export_json,
    export_png,
    png_size,
)
from birdview.core.io import load, scan
from birdview.core.session_store import ModelInfo, RecordedTurn, SessionRecord
from birdview.core.volume import Volume
from tests.conftest import shared


@cache
def _study(*parts: str) -> Volume:
    return geometry.to_canonical(load(scan(shared(*parts)).entries[0]))


def _mr() -> Volume:
    return _study("dcm4che_mr")


def _ct() -> Volume:
    return _study("totalseg", "example_ct_dicom")


def _record(volume: Volume, box: Box) -> SessionRecord:
    turn = RecordedTurn("Where is the bone?", "<ref>bone</ref>", (box,), "VG", "2024-05-01T10:00")
    return SessionRecord(
        volume.short_id,
        ("/x",),
        "",
        ModelInfo("BiRD", "bird", "bf16"),
        "2024-05-01T10:00",
        "2024-05-01T10:01",
        (turn,),
    )


# -- JSON -----------------------------------------------------------------------------------


@pytest.mark.parametrize("anonymise", [False, True])
def test_json_corners_and_anonymity(tmp_path, anonymise):
    volume = _mr()
    box = Box("coronal", 7, 10, 20, 40.5, 60, label="bone")
    path = tmp_path / "out.json"
    export_json(_record(volume, box), volume, path, anonymise=anonymise)
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    (finding,) = data["findings"]
    np.testing.assert_allclose(finding["lps_mm_corners"], box.to_lps_mm(volume))
    np.testing.assert_allclose(finding["voxel_corners_ijk"], box.to_voxel_corners(volume))
    assert finding["question"] == "Where is the bone?" and finding["box"]["plane"] == "coronal"
    assert data["notice"] == NOTICE and data["model"]["name"] == "BiRD"
    if anonymise:
        assert "DOE" not in text and "583295" not in text
    else:
        assert data["study"]["patient"]["name"] == "DOE^J1"
        assert data["study"]["patient"]["id"] == "583295"


# -- PNG ------------------------------------------------------------------------------------


def test_png_aspect_and_box_colour(tmp_path):
    volume = _mr()  # axial pixels are 0.234 mm wide and 2 mm high: 256 x 16 -> 256 x 137
    w_mm, h_mm = geometry.pixel_size_mm(volume, "axial")
    rows, cols = geometry.extract_slice(volume, "axial", 100).shape
    expected = (cols, round(rows * h_mm / w_mm))
    assert png_size(volume, "axial", 100) == expected
    boxes = [Box("axial", 100, 60, 2, 200, 12, label="a"), Box("axial", 100, 20, 4, 50, 10)]
    path = tmp_path / "slice.png"
    size = export_png(volume, "axial", 100, Window(500, 1000), boxes, path, anonymise=True)
    image = Image.open(path).convert("RGB")
    assert image.size == size == expected
    pixels = np.asarray(image)
    sy = expected[1] / rows
    for n, box in enumerate(boxes):
        mid_row = round((box.y1_px + box.y2_px) / 2 * sy)
        left, right = round(box.x1_px), round(box.x2_px) - 1
        assert tuple(pixels[mid_row, left]) == box_colour(n)
        assert tuple(pixels[mid_row, right]) == box_colour(n)
        top = round(box.y1_px * sy)
        assert tuple(pixels[top, (left + right) // 2]) == box_colour(n)


# -- DICOM SR -------------------------------------------------------------------------------


def _pixel_expectation(volume, box, ds):
    """SCOORD of the box corners computed independently from the file's geometry."""
    corners = box.to_lps_mm(volume)
    ipp = np.array(ds.ImagePositionPatient, dtype=float)
    iop = np.array(ds.ImageOrientationPatient, dtype=float)
    dr, dc = (float(v) for v in ds.PixelSpacing)
    return np.array(
        [[(p - ipp) @ iop[:3] / dc + 0.5, (p - ipp) @ iop[3:] / dr + 0.5] for p in corners]
    )


@pytest.mark.parametrize(
    ("study", "plane", "slice_index"), [(_mr, "coronal", 5), (_ct, "axial", 12)]
)
def test_sr_references_the_source_instance(tmp_path, study, plane, slice_index):
    volume = study()
    box = Box(plane, slice_index, 30, 40, 90, 100, label="region")
    off_plane = Box("sagittal" if plane != "sagittal" else "axial", 3, 1, 1, 4, 4)
    path = tmp_path / "sr.dcm"
    result = export_dicom_sr(volume, [(box, "a bright region"), (off_plane, "x")], path)
    assert 0 in result.written
    assert {i for i, _ in result.skipped} | set(result.written) == {0, 1}

    centre = box.to_voxel_corners(volume).mean(axis=0)
    source = volume.source_at(tuple(int(round(c)) for c in centre))
    src = pydicom.dcmread(source.path)
    src_uid = src.file_meta.MediaStorageSOPInstanceUID

    sr = hd.sr.srread(path)
    groups = sr.content.get_planar_roi_measurement_groups()
    group = next(g for g in groups if g.tracking_identifier == "region")
    region = group.roi
    points = region.value
    ref = region.ContentSequence[0].ReferencedSOPSequence[0]
    assert ref.ReferencedSOPInstanceUID == src_uid
    assert str(region.GraphicType) == "POLYLINE" and len(points) == 5
    np.testing.assert_allclose(points[0], points[-1])
    np.testing.assert_allclose(points[:4], _pixel_expectation(volume, box, src), atol=0.5)
    # These series are stored the way the viewer shows them, so the corners are the edges.
    np.testing.assert_allclose(points[:4], [[30, 40], [90, 40], [90, 100], [30, 100]], atol=0.5)
    # The pixel the box's top-left pixel shows is the source pixel the SR points at.
    shown = geometry.extract_slice(volume, plane, slice_index)[40, 30]
    stored = src.pixel_array[int(points[0][1]), int(points[0][0])]
    slope, intercept = float(src.get("RescaleSlope", 1)), float(src.get("RescaleIntercept", 0))
    assert shown == pytest.approx(stored * slope + intercept)

    raw = pydicom.dcmread(path)
    texts = [
        item.TextValue
        for item in raw.ContentSequence
        for item in _walk(item)
        if item.get("ValueType") == "TEXT"
    ]
    assert "a bright region" in texts


def _walk(item):
    yield item
    for child in item.get("ContentSequence", []):
        yield from _walk(child)


def test_sr_anonymised_has_no_patient_data(tmp_path):
    volume = _mr()
    path = tmp_path / "anon.dcm"
    export_dicom_sr(
        volume, [(Box("coronal", 5, 10, 10, 50, 50, label="x"), "t")], path, anonymise=True
    )
    data = path.read_bytes()
    assert b"DOE" not in data and b"583295" not in data
    ds = pydicom.dcmread(path)
    assert str(ds.PatientName).rstrip("^") == "ANONYMOUS" and not ds.get("PatientBirthDate")


def test_sr_of_a_non_dicom_study_raises(tmp_path):
    volume = geometry.to_canonical(
        load(scan(shared("totalseg", "example_ct_sm.nii.gz")).entries[0])
    )
    with pytest.raises(ValueError, match="Unable to export a DICOM SR as the study is not DICOM"):
        export_dicom_sr(volume, [(Box("axial", 0, 0, 0, 2, 2), "")], tmp_path / "x.dcm")
