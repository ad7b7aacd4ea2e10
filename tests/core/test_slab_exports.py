"""Exports of ROIs measured on a thick slab agree with the screen: on a 10 mm slab of the 2 mm
sample CT (five files k-2..k+2), the JSON gives the projection's statistics (pydicom + numpy)
with the slab named and the centre slice's beside them; the PNG draws the projection and the
slab's line above the statistics; the SR keeps the referenced slice's statistics, adds the
projection's with a coded derivation (MIP, MinIP) and says so in text, and passes dsrdump."""

from __future__ import annotations

import json

import highdicom as hd
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from birdview.core.display import Window, apply_window
from birdview.core.exports import export_json, export_png
from birdview.core.exports_sr import export_dicom_sr
from birdview.core.measure import Measurement
from birdview.core.measure_png import draw_measurements
from birdview.core.session_store import SessionRecord
from birdview.core.slab import Slab, slab_image
from tests.core.test_exports import dsrdump
from tests.core.test_measure import ct, ct_truth, ellipse_mask

K = 11
X1, Y1, X2, Y2 = 201.3, 240.0, 262.7, 281.5
ROI = Measurement("ellipse", "axial", K, ((X1, Y1), (X2, Y2)), "liver")
RULER = Measurement("ruler", "axial", K, ((40.5, 60.5), (300.5, 410.5)))


def _stats(image: np.ndarray) -> dict[str, float]:
    values = image[ellipse_mask(image.shape, X1, Y1, X2, Y2)].astype(np.float64)
    return {"mean": values.mean(), "sd": values.std(), "minimum": values.min(),
            "maximum": values.max()}  # fmt: skip


def _truth(mode: str) -> tuple[dict, dict]:
    """(the slab's statistics, the centre slice's), from the DICOM files."""
    truth = ct_truth()
    block = np.stack([truth.hounsfield(n) for n in range(K - 2, K + 3)])
    reduce = {"mip": np.max, "minip": np.min, "average": np.mean}[mode]
    return _stats(reduce(block, axis=0)), _stats(truth.hounsfield(K))


@pytest.mark.parametrize("mode", ["mip", "average"])
def test_json_gives_the_slabs_statistics_and_names_the_slab(tmp_path, mode):
    volume = ct()
    path = tmp_path / "findings.json"
    slab = Slab(mode, 10.0)
    export_json(SessionRecord(volume.identity), volume, path, measurements=[ROI, RULER], slab=slab)
    roi, ruler = json.loads(path.read_text())["measurements"]["items"]
    on_slab, on_slice = _truth(mode)
    for key, value in on_slab.items():
        assert roi["values"][key]["value"] == pytest.approx(value, abs=1e-3)
        assert roi["slice_values"][key]["value"] == pytest.approx(on_slice[key], abs=1e-6)
    assert roi["values"]["mean"]["value"] != pytest.approx(on_slice["mean"], abs=0.5)
    name = {"mip": "MIP", "average": "Average"}[mode]
    assert roi["slab"] == {
        "mode": mode,
        "name": f"{name} 10.0 mm",
        "thickness_mm": 10.0,
        "first_slice_index": K - 2,
        "last_slice_index": K + 2,
        "slice_count": 5,
        "slices": roi["slab"]["slices"],
    }
    assert roi["slab"]["slices"].startswith("Im ")  # as the views name acquired slices
    assert f"{name} 10.0 mm" in roi["text"]
    assert "slab" not in ruler and "slice_values" not in ruler  # a length is no projection


def test_json_without_a_slab_keeps_the_slices_statistics(tmp_path):
    volume = ct()
    for n, slab in enumerate((None, Slab("off", 10.0))):
        path = tmp_path / f"plain-{n}.json"
        export_json(SessionRecord(volume.identity), volume, path, measurements=[ROI], slab=slab)
        (roi,) = json.loads(path.read_text())["measurements"]["items"]
        assert "slab" not in roi and "slice_values" not in roi
        assert roi["values"]["mean"]["value"] == pytest.approx(_truth("mip")[1]["mean"])


def test_png_draws_the_projection_and_the_slabs_line(tmp_path):
    volume, window = ct(), Window(40, 400)
    record = SessionRecord(volume.identity)
    path = tmp_path / "mip.png"
    size = export_png(record, volume, path, plane="axial", slice_index=K, window=window,
                      slab=Slab("mip", 10.0))  # fmt: skip
    assert size == (512, 512)  # 1:1, so the pixels compare directly
    exported = np.asarray(Image.open(path).convert("L")).astype(int)
    mip = apply_window(slab_image(volume, "axial", K, Slab("mip", 10.0)), window).astype(int)
    plain = apply_window(slab_image(volume, "axial", K, None), window).astype(int)
    middle = (slice(150, 350), slice(150, 350))  # no text or marks there
    assert np.abs(exported[middle] - mip[middle]).max() <= 1
    assert np.abs(exported[middle] - plain[middle]).max() > 50


def _label_rows(slab: Slab | None) -> np.ndarray:
    """Which rows right of the ROI hold its yellow label, drawn as the PNG export draws it."""
    image = Image.new("RGB", (512, 512))
    draw = ImageDraw.Draw(image)
    draw_measurements(draw, ImageFont.load_default(), [ROI], ct(), "axial", K, (1.0, 1.0), slab)
    r, g, b = np.moveaxis(np.asarray(image)[:, round(X2) + 6 :].astype(int), 2, 0)
    return ((r > 200) & (g > 170) & (b < 80)).any(axis=1)  # the label's yellow


def test_png_label_names_the_slab_above_its_statistics():
    on_slice, on_slab = _label_rows(None), _label_rows(Slab("mip", 10.0))
    top = round(Y1)
    # Area, Mean/SD, Min/Max on the slice; Area, "MIP 10.0 mm", Mean/SD, Min/Max on the slab.
    band = lambda n: slice(top + 12 * n, top + 12 * n + 12)  # noqa: E731
    assert [on_slice[band(n)].any() for n in range(5)] == [True, True, True, False, False]
    assert [on_slab[band(n)].any() for n in range(5)] == [True, True, True, True, False]


def _ellipse_group(path):
    sr = hd.sr.srread(path)
    (group,) = sr.content.get_planar_roi_measurement_groups()
    return group


@pytest.mark.parametrize(
    ("mode", "code"), [("mip", "113078"), ("minip", "113079"), ("average", None)]
)
def test_sr_keeps_the_slice_and_adds_the_slab_said_so(tmp_path, mode, code):
    volume = ct()
    path = tmp_path / "sr.dcm"
    export_dicom_sr(SessionRecord(volume.identity), volume, path, measurements=[ROI],
                    slab=Slab(mode, 10.0))  # fmt: skip
    dump = dsrdump(path)
    group = _ellipse_group(path)
    on_slab, on_slice = _truth(mode)
    plain, derived = {}, {}
    for m in group.get_measurements():
        derivation = m.derivation
        (derived if derivation is not None else plain)[m.name.meaning] = (m, derivation)
    names = {"Mean": "mean", "Standard Deviation": "sd", "Minimum": "minimum",
             "Maximum": "maximum"}  # fmt: skip
    for meaning, key in names.items():
        assert float(plain[meaning][0].value) == pytest.approx(on_slice[key], abs=1e-4)
    if code is None:
        assert derived == {}  # an average has no code: the text says it
    else:
        for meaning, key in names.items():
            m, derivation = derived[meaning]
            assert (derivation.value, derivation.scheme_designator) == (code, "DCM")
            assert float(m.value) == pytest.approx(on_slab[key], abs=1e-3)
    name = {"mip": "MIP", "minip": "MinIP", "average": "Average"}[mode]
    assert "ROI statistics on the thick slab shown" in dump
    assert f"On screen the ROI statistics were taken on the {name} 10.0 mm over Im " in dump
    assert "(5 slices)" in dump and "without a derivation are of the referenced image" in dump
    assert f"Mean {on_slab['mean']:.1f} HU" in dump


def test_sr_without_a_slab_has_no_slab_note(tmp_path):
    volume = ct()
    path = tmp_path / "sr.dcm"
    export_dicom_sr(SessionRecord(volume.identity), volume, path, measurements=[ROI])
    dump = dsrdump(path)
    assert "thick slab" not in dump
    assert all(m.derivation is None for m in _ellipse_group(path).get_measurements())
