"""Exports on real studies: JSON, the annotated PNG and the DICOM SR say exactly what happened
(every turn, clean answers, the model and the study they came from), refuse another study's
conversation and get normal file permissions. Every SR written here is read back by dcmtk's
`dsrdump` and by highdicom."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
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
    AI_NOTICE,
    NOTICE,
    box_colour,
    export_json,
    export_png,
    png_size,
)
from birdview.core.exports_sr import SCHEME, export_dicom_sr
from birdview.core.io import load, scan
from birdview.core.session_store import ModelInfo, RecordedTurn, SessionRecord, save_atomic
from birdview.core.volume import Volume
from tests.conftest import REPO, shared

SAMPLES = REPO / "resources" / "samples"
MODEL = ModelInfo("bird-qwen25-3b", "qwen2_5_vl", "bf16", "0123456789abcdef" * 4)
# What a Qwen2.5-VL answer looks like before `readable_answer`: a JSON box in a code fence.
RAW_GROUND = (
    'The liver is located at ```json\n[{"bbox_2d": [100, 120, 250, 300], "label": "liver"}]\n```'
)
REFER_ANSWER = "Vertebral body – lumbar (L1), 40 × 30 mm, façade of the canal"
SWEEP_ANSWER = "Found on axial slices 3–9; extent 60 × 80 × 14 mm (R-L × A-P × I-S)."
MARKUP = ("```", "bbox_2d", "<ref>", "<box>", "<|")


@cache
def _study(path: str) -> Volume:
    return geometry.to_canonical(load(scan(path).entries[0]))


def _mr() -> Volume:
    return _study(str(SAMPLES / "dcm4che_mr"))


def _ct() -> Volume:
    return _study(str(SAMPLES / "totalseg_ct"))


def _record(volume: Volume, *turns: RecordedTurn, user_boxes=()) -> SessionRecord:
    return SessionRecord(
        volume.identity,
        ("/x",),
        "",
        MODEL,
        "2024-05-01T10:00",
        "2024-05-01T10:05",
        turns,
        user_boxes,
    )


def _ground(box: Box, answer: str = RAW_GROUND) -> RecordedTurn:
    p = box.plane.value
    return RecordedTurn("Where is the liver?", answer, (box,), "VG", "t1", p, box.slice_index)


def _refer(region: Box) -> RecordedTurn:
    p = region.plane.value
    return RecordedTurn(
        "What is this?", f"<ref>{REFER_ANSWER}</ref>", (), "RO", "t2", p, region.slice_index,
        "What is this? <box>(1,2),(3,4)</box>", region,
    )  # fmt: skip


def _sweep(plane: str, slices, answer: str = SWEEP_ANSWER) -> RecordedTurn:
    boxes = tuple(Box(plane, k, 200, 200, 260, 280, label="colon") for k in slices)
    return RecordedTurn("colon", answer, boxes, "VG3D", "t3", plane, 0, "colon")


def _session_record(volume: Volume) -> SessionRecord:
    """A refer answer, a ground answer, a sweep and a description, on the acquisition plane."""
    plane = geometry.acquisition_plane(volume).value
    describe = RecordedTurn("Describe the image", "A CT slice — upper abdomen.", (), "MII", "t4",
                            plane, 5)  # fmt: skip
    return _record(
        volume,
        _ground(Box(plane, 10, 100, 120, 250, 300, label="liver")),
        _refer(Box(plane, 8, 60, 60, 160, 140, label="drawn")),
        _sweep(plane, range(2, 9)),
        describe,
    )


# -- reading an SR back -----------------------------------------------------------------------

# dcmtk 3.6.7's VR checker cannot check UTF-8 strings and says so; it is not a fault of the file.
_KNOWN_DCMTK_NOTE = "The VR checker does not support this Specific Character Set: ISO_IR 192"


def dsrdump(path) -> str:
    """dcmtk's dump of the SR (long values in full, UTF-8); fails on any error or warning."""
    if shutil.which("dsrdump") is None:
        pytest.skip("dcmtk's dsrdump is not installed (Debian package dcmtk; CI installs it)")
    done = subprocess.run(
        ["dsrdump", "+U8", "+Pl", "+Pu", "+Pc", str(path)],
        capture_output=True, text=True, encoding="utf-8", timeout=60,
    )  # fmt: skip
    problems = [
        line
        for line in done.stderr.splitlines() + done.stdout.splitlines()
        if line[:2] in ("W:", "E:", "F:") and _KNOWN_DCMTK_NOTE not in line
    ]
    assert done.returncode == 0 and not problems, done.stderr or done.stdout
    assert "Comprehensive 3D SR Document" in done.stdout
    return done.stdout


def read_sr(path) -> tuple[str, hd.sr.Comprehensive3DSR]:
    """The dsrdump text and highdicom's reading of an SR written by BirdView."""
    return dsrdump(path), hd.sr.srread(path)


def texts(ds) -> list[str]:
    found = []

    def walk(items) -> None:
        for item in items:
            if item.get("ValueType") == "TEXT":
                found.append(str(item.TextValue))
            walk(item.get("ContentSequence", []))

    walk(ds.ContentSequence)
    return found


def text_of(ds, code_value: str, scheme: str = SCHEME) -> list[str]:
    """Values of the TEXT items named (code_value, scheme) anywhere below ``ds`` (a dataset or
    a content sequence)."""
    found = []

    def walk(items) -> None:
        for item in items:
            name = item.get("ConceptNameCodeSequence", [None])[0]
            if item.get("ValueType") == "TEXT" and name is not None:
                if (name.CodeValue, name.CodingSchemeDesignator) == (code_value, scheme):
                    found.append(str(item.TextValue))
            walk(item.get("ContentSequence", []))

    walk(ds.ContentSequence if isinstance(ds, pydicom.Dataset) else ds)
    return found


def source_uid(volume: Volume, plane: str, index: int) -> str:
    centre = Box(plane, index, 0, 0, 1, 1).to_voxel_corners(volume).mean(axis=0)
    source = volume.source_at(tuple(int(round(c)) for c in centre))
    header = pydicom.dcmread(source.path, stop_before_pixels=True)
    return header.file_meta.MediaStorageSOPInstanceUID


# -- JSON -----------------------------------------------------------------------------------


@pytest.mark.parametrize("anonymise", [False, True])
def test_json_corners_and_anonymity(tmp_path, anonymise):
    volume = _mr()
    box = Box("coronal", 7, 10, 20, 40.5, 60, label="bone")
    path = tmp_path / "out.json"
    export_json(_record(volume, _ground(box)), volume, path, anonymise=anonymise)
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    (finding,) = data["findings"]
    np.testing.assert_allclose(finding["lps_mm_corners"], box.to_lps_mm(volume))
    np.testing.assert_allclose(finding["voxel_corners_ijk"], box.to_voxel_corners(volume))
    assert finding["question"] == "Where is the liver?" and finding["box"]["plane"] == "coronal"
    assert data["notice"] == NOTICE and data["model"]["name"] == MODEL.name
    if anonymise:
        assert "DOE" not in text and "583295" not in text
    else:
        assert data["study"]["patient"]["name"] == "DOE^J1"
        assert data["study"]["patient"]["id"] == "583295"


def test_json_has_every_turn_with_clean_answers_and_provenance(tmp_path):
    volume = _ct()
    record = _session_record(volume)
    path = tmp_path / "findings.json"
    export_json(record, volume, path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert [t["task"] for t in data["turns"]] == ["VG", "RO", "VG3D", "MII"]
    ground, refer, sweep, _ = data["turns"]
    assert ground["answer"] == "The liver is located at the box shown."
    assert ground["answer_raw"] == RAW_GROUND  # what the model said, exactly
    assert refer["answer"] == REFER_ANSWER and refer["region"]["label"] == "drawn"
    assert sweep["answer"] == SWEEP_ANSWER and sweep["box_count"] == 7
    for finding in data["findings"]:
        assert not any(m in (finding["answer"] or "") for m in MARKUP)
    sources = [f["source"] for f in data["findings"]]
    assert sources == ["model", "region"] + ["model"] * 7
    region = data["findings"][1]
    np.testing.assert_allclose(region["lps_mm_corners"], record.turns[1].region.to_lps_mm(volume))
    assert data["study_identity"] == data["study"]["study_identity"] == volume.identity
    assert data["model"] == {
        "name": MODEL.name,
        "family": MODEL.family,
        "precision": MODEL.precision,
        "checkpoint_sha256": MODEL.checkpoint_sha256,
    }
    assert data["ai_notice"] == AI_NOTICE and "not a diagnosis" in AI_NOTICE


# -- PNG ------------------------------------------------------------------------------------


def test_png_aspect_and_box_colour(tmp_path):
    volume = _mr()  # axial pixels are 0.234 mm wide and 2 mm high: 256 x 16 -> 256 x 137
    w_mm, h_mm = geometry.pixel_size_mm(volume, "axial")
    rows, cols = geometry.extract_slice(volume, "axial", 100).shape
    expected = (cols, round(rows * h_mm / w_mm))
    assert png_size(volume, "axial", 100) == expected
    boxes = [Box("axial", 100, 60, 2, 200, 12, label="a"), Box("axial", 100, 20, 4, 50, 10)]
    path = tmp_path / "slice.png"
    size = export_png(
        _record(volume), volume, path, plane="axial", slice_index=100,
        window=Window(500, 1000), boxes=boxes, anonymise=True,
    )  # fmt: skip
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


def test_png_carries_the_provenance(tmp_path):
    volume = _ct()
    path = tmp_path / "view.png"
    export_png(_session_record(volume), volume, path, plane="axial", slice_index=10,
               window=Window(400, 50))  # fmt: skip
    chunks = Image.open(path).text
    stored = json.loads(chunks["birdview"])
    assert stored["study_identity"] == volume.identity
    assert stored["model"]["checkpoint_sha256"] == MODEL.checkpoint_sha256
    assert stored["model"]["family"] == "qwen2_5_vl" and stored["model"]["precision"] == "bf16"
    assert AI_NOTICE in chunks["Disclaimer"] and NOTICE in chunks["Disclaimer"]
    assert MODEL.name in chunks["Source"] and chunks["Software"] == "BirdView"


# -- every export -----------------------------------------------------------------------------


def _export(kind: str, record: SessionRecord, volume: Volume, path) -> None:
    if kind == "json":
        export_json(record, volume, path)
    elif kind == "png":
        export_png(record, volume, path, plane="axial", slice_index=3, window=Window(400, 50))
    else:
        export_dicom_sr(record, volume, path)


@pytest.mark.parametrize("kind", ["json", "png", "sr"])
def test_an_export_refuses_another_studys_conversation(tmp_path, kind):
    ct, mr = _ct(), _mr()
    mr_record = _record(mr, _ground(Box("axial", 3, 10, 10, 50, 50, label="liver")))
    path = tmp_path / f"out.{kind}"
    with pytest.raises(ValueError, match="they are different studies"):
        _export(kind, mr_record, ct, path)
    assert not path.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("kind", ["json", "png", "sr"])
def test_exports_get_normal_permissions_and_sessions_stay_private(tmp_path, kind):
    volume = _ct()
    record = _record(volume, _ground(Box("axial", 3, 10, 10, 50, 50, label="liver")))
    old = os.umask(0o022)
    try:
        _export(kind, record, volume, tmp_path / "shared")
        save_atomic(record, tmp_path / "session.json")
        os.umask(0o077)  # a stricter umask is respected
        _export(kind, record, volume, tmp_path / "strict")
    finally:
        os.umask(old)
    if kind == "sr":
        read_sr(tmp_path / "shared")
    assert stat.S_IMODE((tmp_path / "shared").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "strict").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "session.json").stat().st_mode) == 0o600


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
    off_plane = Box("sagittal" if plane != "sagittal" else "axial", 3, 1, 1, 4, 4, label="off")
    path = tmp_path / "sr.dcm"
    record = _record(volume, _ground(box, "a bright region"), _ground(off_plane, "x"))
    result = export_dicom_sr(record, volume, path)
    assert result.groups == 2 and result.skipped == ()  # both studies have a Frame of Reference

    centre = box.to_voxel_corners(volume).mean(axis=0)
    source = volume.source_at(tuple(int(round(c)) for c in centre))
    src = pydicom.dcmread(source.path)
    src_uid = src.file_meta.MediaStorageSOPInstanceUID

    dump, sr = read_sr(path)
    groups = sr.content.get_planar_roi_measurement_groups()
    group = next(g for g in groups if g.tracking_identifier == "Turn 1: region")
    region = group.roi
    points = region.value
    ref = region.ContentSequence[0].ReferencedSOPSequence[0]
    assert ref.ReferencedSOPInstanceUID == src_uid and src_uid in dump
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
    off = next(g for g in groups if g.tracking_identifier == "Turn 2: off")
    assert str(off.roi.GraphicType) == "POLYGON"  # SCOORD3D in patient mm
    np.testing.assert_allclose(off.roi.value[:4], off_plane.to_lps_mm(volume), atol=1e-3)
    assert "a bright region" in texts(pydicom.dcmread(path))


def test_sr_of_a_session_with_refer_ground_and_sweep(tmp_path):
    """The issue's proof: refer, ground and sweep answers pass dsrdump with their text intact
    (non-ASCII included), and highdicom reads back one group per answer."""
    volume = _ct()
    record = _session_record(volume)
    path = tmp_path / "session-sr.dcm"
    result = export_dicom_sr(record, volume, path)
    assert result.groups == 4 and result.skipped == ()
    dump, sr = read_sr(path)
    ds = pydicom.dcmread(path)
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    notices = f"{AI_NOTICE} {NOTICE}"
    for text in (REFER_ANSWER, SWEEP_ANSWER, "A CT slice — upper abdomen.", notices):
        assert f'"{text}"' in dump  # intact, with its dashes, "×" and "ç"
        assert text in texts(ds)
    assert not any(m in t for t in texts(ds) for m in MARKUP)
    assert text_of(ds, "ANSWER")[0] == "The liver is located at the box shown."
    assert text_of(ds, "QUESTION") == [t.question for t in record.turns]
    assert text_of(ds, "STUDYIDENTITY") == [volume.identity]

    planar = sr.content.get_planar_roi_measurement_groups()
    names = [g.tracking_identifier for g in planar]
    assert names == ["Turn 1: liver", "Turn 2: region asked about"]
    refer_region = planar[1].roi
    np.testing.assert_allclose(refer_region.value[:4], [[60, 60], [160, 60], [160, 140], [60, 140]],
                               atol=0.5)  # fmt: skip
    refer_ref = refer_region.ContentSequence[0].ReferencedSOPSequence[0]
    assert refer_ref.ReferencedSOPInstanceUID == source_uid(volume, "axial", 8)

    (sweep,) = sr.content.get_volumetric_roi_measurement_groups()  # one structure, one group
    assert sweep.tracking_identifier == "Turn 3: colon"
    regions = sweep.roi
    assert len(regions) == 7  # one region per slice it was found on
    referenced = [r.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
                  for r in regions]  # fmt: skip
    assert referenced == [source_uid(volume, "axial", k) for k in range(2, 9)]
    assert len(set(referenced)) == 7

    (described,) = sr.content.get_image_measurement_groups()
    assert described.tracking_identifier == "Turn 4: Describe the image"

    for group in (*planar, sweep, described):  # TID 4019 Algorithm Identification
        assert text_of(group, "111001", "DCM") == [MODEL.name]
        assert text_of(group, "111003", "DCM") == [f"sha256:{MODEL.checkpoint_sha256}"]
        assert text_of(group, "111002", "DCM") == ["family: qwen2_5_vl", "precision: bf16"]
    (observer,) = sr.content.get_observer_contexts()
    assert observer.observer_identifying_attributes.name == MODEL.name
    scheme = ds.CodingSchemeIdentificationSequence[0]
    assert scheme.CodingSchemeDesignator == SCHEME
    (tmp_path / "dsrdump.txt").write_text(dump, encoding="utf-8")


def test_sr_sweep_off_the_acquisition_plane_is_one_volume_surface(tmp_path):
    volume = _mr()  # acquired coronally; a sweep over axial slices crosses every image
    assert geometry.acquisition_plane(volume).value == "coronal"
    record = _record(volume, _sweep("axial", (100, 101, 102, 103), "Found on axial slices."))
    path = tmp_path / "sr.dcm"
    assert export_dicom_sr(record, volume, path).groups == 1
    _, sr = read_sr(path)
    (group,) = sr.content.get_volumetric_roi_measurement_groups()
    surface = group.roi
    assert isinstance(surface, hd.sr.VolumeSurface)
    polygons = surface.graphic_data
    assert len(polygons) == 4
    for polygon, box in zip(polygons, record.turns[0].boxes, strict=True):
        np.testing.assert_allclose(polygon[:4], box.to_lps_mm(volume), atol=1e-3)


def test_sr_anonymised_has_no_patient_data(tmp_path):
    volume = _mr()
    path = tmp_path / "anon.dcm"
    record = _record(volume, _ground(Box("coronal", 5, 10, 10, 50, 50, label="x"), "t"))
    export_dicom_sr(record, volume, path, anonymise=True)
    dump, _ = read_sr(path)
    data = path.read_bytes()
    assert b"DOE" not in data and b"583295" not in data and "DOE" not in dump
    ds = pydicom.dcmread(path)
    assert str(ds.PatientName).rstrip("^") == "ANONYMOUS" and not ds.get("PatientBirthDate")
    ct = _ct()  # its header names the hospital that issued the patient ID
    assert pydicom.dcmread(ct.sources[0].path, stop_before_pixels=True).get("IssuerOfPatientID")
    export_dicom_sr(_session_record(ct), ct, path, anonymise=True)
    read_sr(path)
    assert "IssuerOfPatientID" not in pydicom.dcmread(path)


def test_sr_of_a_non_dicom_study_raises(tmp_path):
    volume = geometry.to_canonical(
        load(scan(shared("totalseg", "example_ct_sm.nii.gz")).entries[0])
    )
    record = _record(volume, _ground(Box("axial", 0, 0, 0, 2, 2)))
    with pytest.raises(ValueError, match="Unable to export a DICOM SR as the study is not DICOM"):
        export_dicom_sr(record, volume, tmp_path / "x.dcm")
    assert not (tmp_path / "x.dcm").exists()
