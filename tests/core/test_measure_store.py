"""Measurements kept with their study and exported: the per-study file (round trip, refused
for another study, damaged files named), the JSON export and the DICOM SR, which passes dcmtk's
`dsrdump` and reads back in highdicom with the values measured here from the DICOM headers."""

from __future__ import annotations

import json
import math

import highdicom as hd
import numpy as np
import pytest
from PIL import Image

from birdview.core.display import Window
from birdview.core.exports import export_json, export_png
from birdview.core.exports_sr import export_dicom_sr
from birdview.core.measure import Measurement, measure
from birdview.core.measure_store import (
    load_measurements,
    measurements_path,
    save_measurements,
)
from birdview.core.session_store import SessionRecord, session_path
from tests.conftest import REPO
from tests.core.test_exports import dsrdump
from tests.core.test_measure import CR_FILE, ct, ct_truth, study

OTHER = "content-sha256:" + "ab" * 32


def _ct_measurements() -> list[Measurement]:
    return [
        Measurement("ruler", "axial", 7, ((40.5, 60.5), (300.5, 410.5)), "liver span"),
        Measurement("angle", "coronal", 256, ((140.0, 15.0), (100.0, 15.0), (130.0, 5.0))),
        Measurement("ellipse", "axial", 11, ((201.3, 240.0), (262.7, 281.5))),
        Measurement("rectangle", "sagittal", 250, ((100.0, 2.0), (160.0, 9.0))),
    ]


# -- the study's file -----------------------------------------------------------------------


def test_round_trip_in_the_studys_own_file(tmp_path):
    volume, items = ct(), _ct_measurements()
    path = save_measurements(volume.identity, items, tmp_path)
    assert path == measurements_path(volume.identity, tmp_path)
    # Beside the session file of the same study, named by the same hash.
    assert path.name[len("measurements-") :] == session_path(volume.identity, tmp_path).name[8:]
    saved = json.loads(path.read_text())
    assert saved["study_identity"] == volume.identity
    assert load_measurements(volume.identity, tmp_path) == items
    assert load_measurements(OTHER, tmp_path) == []  # another study has none
    save_measurements(volume.identity, [], tmp_path)  # all deleted: the file goes
    assert not path.exists()


def test_another_studys_file_is_refused_and_never_overwritten(tmp_path):
    volume = ct()
    save_measurements(OTHER, _ct_measurements()[:1], tmp_path)
    # The other study's file put where this study's belongs (a copy, a renamed file...).
    theirs = measurements_path(OTHER, tmp_path)
    mine = measurements_path(volume.identity, tmp_path)
    theirs.rename(mine)
    with pytest.raises(ValueError, match="as they belong to another study"):
        load_measurements(volume.identity, tmp_path)
    with pytest.raises(ValueError, match="belongs to another study"):
        save_measurements(volume.identity, _ct_measurements(), tmp_path)
    assert json.loads(mine.read_text())["study_identity"] == OTHER


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "it is not JSON"),
        ('{"format": "birdview-session"}', "not a BirdView measurements file"),
        (
            '{"format": "birdview-measurements", "schema_version": 1, "study_identity": "%s",'
            ' "measurements": [{"kind": "ruler", "plane": "axial", "slice_index": 0,'
            ' "points_px": [[0, 0]]}]}',
            "a field is malformed \\(Unable to make a ruler from 1 points",
        ),
    ],
)
def test_a_damaged_file_is_one_message_naming_it(tmp_path, content, problem):
    volume = ct()
    path = measurements_path(volume.identity, tmp_path)
    path.write_text(content.replace("%s", volume.identity))
    with pytest.raises(ValueError, match=f"{path.name}.*{problem}"):
        load_measurements(volume.identity, tmp_path)


# -- JSON -----------------------------------------------------------------------------------


def test_json_export_carries_values_units_and_the_study(tmp_path):
    volume, items, truth = ct(), _ct_measurements(), ct_truth()
    record = SessionRecord(volume.identity)
    path = tmp_path / "findings.json"
    export_json(record, volume, path, measurements=items)
    data = json.loads(path.read_text())
    section = data["measurements"]
    assert section["study_identity"] == data["study_identity"] == volume.identity
    assert section["calibration"]["source"] == "Pixel Spacing"
    ruler, angle, ellipse, rectangle = section["items"]
    expected = np.linalg.norm(truth.position(300, 410, 7) - truth.position(40, 60, 7))
    assert ruler["values"]["length"] == {"value": pytest.approx(expected), "unit": "mm"}
    assert ruler["label"] == "liver span"
    ends = np.asarray(ruler["points_lps_mm"])
    assert np.allclose(ends, [truth.position(40, 60, 7), truth.position(300, 410, 7)], atol=1e-3)
    assert angle["values"]["angle"]["unit"] == "deg"
    assert ellipse["values"]["mean"]["unit"] == "HU"
    assert rectangle["values"]["area"]["unit"] == "mm2"
    assert ellipse["text"] == measure(items[2], volume).lines()


def test_json_export_refuses_another_studys_record(tmp_path):
    with pytest.raises(ValueError, match="they are different studies"):
        export_json(SessionRecord(OTHER), ct(), tmp_path / "x.json", measurements=[])


# -- DICOM SR -------------------------------------------------------------------------------


def _groups(path) -> list:
    sr = hd.sr.srread(path)
    return list(sr.content.get_planar_roi_measurement_groups())


def _values(group) -> dict[str, tuple[float, str]]:
    return {m.name.meaning: (float(m.value), m.unit.value) for m in group.get_measurements()}


def test_sr_with_measurements_passes_dsrdump_and_reads_back(tmp_path):
    volume, items, truth = ct(), _ct_measurements(), ct_truth()
    path = tmp_path / "sr.dcm"
    result = export_dicom_sr(SessionRecord(volume.identity), volume, path, measurements=items)
    dump = dsrdump(path)
    assert result.groups == 4 and result.skipped == ()
    assert dump.count('(410668003,SCT,"Length")') == 1
    groups = _groups(path)
    assert len(groups) == 4
    ruler, angle, ellipse, rectangle = groups
    expected = float(np.linalg.norm(truth.position(300, 410, 7) - truth.position(40, 60, 7)))
    length, unit = _values(ruler)["Length"]
    assert (length, unit) == (pytest.approx(expected, abs=1e-4), "mm")
    assert "liver span" in str(ruler.tracking_identifier)
    # The axial ruler lies on an acquired slice: its region is in that file's pixels.
    region = ruler.roi
    assert region.graphic_type == hd.sr.GraphicTypeValues.POLYLINE
    assert np.allclose(region.value, [[40.5, 60.5], [300.5, 410.5]], atol=1e-3)
    source = region.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
    assert source == truth.headers[7].file_meta.MediaStorageSOPInstanceUID  # its UID is blank
    assert _values(angle)["Angle"][1] == "deg"
    hu = truth.hounsfield(11)
    stats = _values(ellipse)
    assert stats["Mean"][1] == "[hnsf'U]"
    x1, y1, x2, y2 = 201.3, 240.0, 262.7, 281.5
    rows, cols = np.mgrid[0 : hu.shape[0], 0 : hu.shape[1]] + 0.5
    inside = ((cols - (x1 + x2) / 2) / ((x2 - x1) / 2)) ** 2 + (
        (rows - (y1 + y2) / 2) / ((y2 - y1) / 2)
    ) ** 2 <= 1
    assert stats["Mean"][0] == pytest.approx(hu[inside].mean(), abs=1e-6)
    assert stats["Minimum"][0] == hu[inside].min()
    assert stats["Maximum"][0] == hu[inside].max()
    area = math.pi * (x2 - x1) / 2 * (y2 - y1) / 2 * truth.col_mm * truth.row_mm
    assert stats["Area"] == (pytest.approx(area, rel=1e-6), "mm2")
    # Off the acquisition plane: SCOORD3D in patient mm on the study's Frame of Reference.
    assert rectangle.roi.graphic_type == hd.sr.GraphicTypeValues3D.POLYGON
    assert rectangle.roi.ReferencedFrameOfReferenceUID == truth.headers[0].FrameOfReferenceUID
    assert "Measurement by the user" in dump and "Pixel Spacing" in dump


def test_sr_of_a_radiograph_states_the_calibration(tmp_path):
    volume = study(str(CR_FILE))
    items = [Measurement("ruler", "axial", 0, ((1, 2), (13, 7)))]
    path = tmp_path / "cr-sr.dcm"
    export_dicom_sr(SessionRecord(volume.identity), volume, path, measurements=items)
    dump = dsrdump(path)
    assert "Imager Pixel Spacing at the detector, not corrected for magnification" in dump
    (group,) = _groups(path)
    length, unit = _values(group)["Length"]
    assert unit == "mm" and length == pytest.approx(math.hypot(1.2, 0.5))
    assert np.allclose(group.roi.value, [[1, 2], [13, 7]])  # stored pixels, as shown


def test_sr_with_only_measurements_of_another_study_is_refused(tmp_path):
    with pytest.raises(ValueError, match="they are different studies"):
        export_dicom_sr(
            SessionRecord(OTHER), ct(), tmp_path / "x.dcm", measurements=_ct_measurements()
        )


# -- PNG ------------------------------------------------------------------------------------


def test_png_export_draws_the_slices_measurements_with_their_values(tmp_path):
    volume, items = ct(), _ct_measurements()
    record = SessionRecord(volume.identity)
    window = Window(40, 400)
    plain, measured = tmp_path / "plain.png", tmp_path / "measured.png"
    for path, drawn in ((plain, ()), (measured, items)):
        export_png(
            record, volume, path, plane="axial", slice_index=7, window=window, measurements=drawn
        )
    before = np.asarray(Image.open(plain).convert("RGB")).astype(int)
    after = np.asarray(Image.open(measured).convert("RGB")).astype(int)
    # The ruler (slice 7) runs from (40.5, 60.5) to (300.5, 410.5): its middle is yellow now.
    x, y = round((40.5 + 300.5) / 2), round((60.5 + 410.5) / 2)
    r, g, b = after[y, x]
    assert r > 200 and g > 170 and b < 80
    assert before[y, x][0] == before[y, x][1] == before[y, x][2]  # grey before
    # Only slice 7's measurement is drawn: the ellipse (slice 11) region is unchanged.
    assert np.array_equal(after[238:266, 199:265], before[238:266, 199:265])  # off the ruler
    yellow = (after[..., 0] > 200) & (after[..., 1] > 170) & (after[..., 2] < 80)
    label_rows = yellow[50:80, 305:420]  # its value, right of the ruler, level with its top
    assert label_rows.sum() > 30


@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
def test_sr_of_mr_measurements_on_every_plane(tmp_path, plane):
    """The MR was acquired coronally: coronal measurements point into its images, the other
    planes' are in patient mm; all of them pass dsrdump with their values."""
    volume = study(str(REPO / "resources" / "samples" / "dcm4che_mr"))
    items = [
        Measurement("ruler", plane, 5, ((10, 3), (40, 9))),
        Measurement("ellipse", plane, 5, ((12, 2), (44, 10))),
    ]
    path = tmp_path / f"mr-{plane}.dcm"
    result = export_dicom_sr(SessionRecord(volume.identity), volume, path, measurements=items)
    dump = dsrdump(path)
    assert result.groups == 2 and result.skipped == ()
    ruler, ellipse = _groups(path)
    assert _values(ruler)["Length"] == (pytest.approx(measure(items[0], volume).length), "mm")
    assert _values(ellipse)["Mean"] == (pytest.approx(measure(items[1], volume).mean), "1")
    in_pixels = plane == "coronal"
    assert ("SCOORD3D" not in dump) == in_pixels
    assert ellipse.roi.graphic_type.value == "ELLIPSE"
