"""The user's arrows and text notes on the sample CT: kept in the study's measurement file,
written into the DICOM SR (dsrdump passes; highdicom reads the arrow's tail and tip back in the
source image's pixels and the note's text) and drawn into the annotated PNG."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
from PIL import Image

from birdview.core.annotations import arrow, text_note
from birdview.core.display import Window
from birdview.core.exports import export_json, export_png
from birdview.core.exports_sr import export_dicom_sr
from birdview.core.measure import Measurement, measure
from birdview.core.measure_set import MeasurementSet
from birdview.core.measure_store import load_measurements, save_measurements
from birdview.core.session_store import SessionRecord
from tests.core.test_exports import dsrdump, texts
from tests.core.test_measure import ct, ct_truth
from tests.core.test_measure_store import _groups


def _notes() -> list[Measurement]:
    return [
        arrow("axial", 7, (60.5, 80.5), (200.5, 250.5), "lesion"),
        text_note("axial", 7, (300.0, 40.0), "Liver – segment VII"),
        Measurement("ruler", "axial", 7, ((40.5, 60.5), (300.5, 410.5))),
    ]


def test_annotations_measure_nothing_and_need_their_points():
    volume = ct()
    assert measure(_notes()[0], volume).lines() == []
    with pytest.raises(ValueError, match="arrow from 1 points"):
        Measurement("arrow", "axial", 0, ((1, 2),))
    with pytest.raises(ValueError, match="without text"):
        text_note("axial", 0, (1, 2), "  ")


def test_annotations_share_the_measurements_undo_and_file(tmp_path):
    volume, items = ct(), _notes()
    sets = MeasurementSet()
    sets.reset(volume.identity)
    for item in items:
        sets.add(item)
    sets.remove(0)  # the arrow deleted …
    assert [m.kind for m in sets.items] == ["text", "ruler"]
    sets.undo()  # … and back
    assert sets.items == tuple(items)
    save_measurements(volume.identity, sets.items, tmp_path)
    assert load_measurements(volume.identity, tmp_path) == items


def test_sr_carries_the_arrow_and_the_note(tmp_path):
    volume, truth = ct(), ct_truth()
    path = tmp_path / "sr.dcm"
    result = export_dicom_sr(SessionRecord(volume.identity), volume, path, measurements=_notes())
    dump = dsrdump(path)
    assert result.groups == 3 and result.skipped == ()
    arrow_group, note_group, _ = _groups(path)
    # On the acquired axial slice: the region is in the source file's pixels, tail then tip.
    assert np.allclose(arrow_group.roi.value, [[60.5, 80.5], [200.5, 250.5]], atol=1e-3)
    source = arrow_group.roi.ContentSequence[0].ReferencedSOPSequence[0]
    assert source.ReferencedSOPInstanceUID == truth.headers[7].file_meta.MediaStorageSOPInstanceUID
    assert str(note_group.roi.graphic_type.value) == "POINT"
    assert np.allclose(note_group.roi.value, [300.0, 40.0], atol=1e-3)
    written = texts(pydicom.dcmread(path))
    assert "lesion" in written and "Liver – segment VII" in written
    assert "Annotation by the user" in dump and "Annotation 2: Liver" in dump


def test_json_carries_the_annotations_in_pixels_and_mm(tmp_path):
    volume, truth = ct(), ct_truth()
    path = tmp_path / "findings.json"
    export_json(SessionRecord(volume.identity), volume, path, measurements=_notes()[:2])
    items = json.loads(path.read_text())["measurements"]["items"]
    arrow_item, note_item = items
    assert (arrow_item["kind"], arrow_item["label"], arrow_item["values"]) == (
        "arrow",
        "lesion",
        {},
    )
    assert note_item["label"] == "Liver – segment VII"
    # The tip at pixel edges (200.5, 250.5) is the centre of pixel (200, 250) in patient mm.
    tip = np.array(arrow_item["points_lps_mm"][1])
    expected = truth.position(200, 250, 7)  # centre of pixel (200, 250) of slice 7
    assert np.abs(tip - expected).max() < 1e-3


def test_png_draws_the_arrow_and_its_note(tmp_path):
    volume = ct()
    window = Window(400, 40)
    record = SessionRecord(volume.identity)
    plain, annotated = tmp_path / "plain.png", tmp_path / "annotated.png"
    export_png(record, volume, plain, plane="axial", slice_index=7, window=window)
    export_png(
        record, volume, annotated, plane="axial", slice_index=7, window=window,
        measurements=_notes()[:2],
    )  # fmt: skip
    before = np.asarray(Image.open(plain).convert("RGB"), dtype=int)
    after = np.asarray(Image.open(annotated).convert("RGB"), dtype=int)
    assert before.shape == after.shape
    changed = np.argwhere(np.abs(after - before).sum(axis=2) > 60)
    # The shaft's midpoint, the tip and the note's anchor are drawn in yellow (the PNG is at
    # 1 output pixel per image pixel on this CT; its height adds the caption below).
    yellow = (after[..., 0] > 200) & (after[..., 1] > 170) & (after[..., 2] < 80)
    for x, y in ((130, 165), (199, 249), (300, 40)):
        assert yellow[y - 2 : y + 3, x - 2 : x + 3].any(), (x, y)
    assert changed.size and not yellow[400:, :100].any()  # nothing far from the annotations
