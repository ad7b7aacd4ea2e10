"""Masks in the real window on the sample CT: Dice/IoU beside the label legend, the compare
window (model box, mask, reference), and File → Export → DICOM SR writing the SR with the SEG
and the NIfTI, each read back (dsrdump, highdicom, nibabel)."""

from __future__ import annotations

import highdicom as hd
import nibabel as nib
import numpy as np
import pytest
from pydicom.sr.codedict import codes

from birdview.core.box import Box
from birdview.core.geometry import Plane
from birdview.core.labels_io import bundled_labels_path
from birdview.core.masks import mask_volume_ml
from tests.conftest import REPO
from tests.core.test_exports import read_sr
from tests.ui.helpers import open_and_wait

SAMPLE_CT = REPO / "resources" / "samples" / "totalseg_ct"
LIVER = 5
SLICE = 10


@pytest.fixture
def window(make_main_window, qtbot):
    window = make_main_window()
    open_and_wait(qtbot, window, SAMPLE_CT)
    window.labels.open_bundled()
    qtbot.waitUntil(lambda: window.labels.overlay.label_map is not None, timeout=20000)
    window.session.set_slice(Plane.AXIAL, SLICE)
    return window


def _liver(window) -> np.ndarray:
    return np.asarray(window.labels.overlay.label_map.volume.voxels) == LIVER


def test_dice_beside_the_legend_and_in_the_compare_window(window, qtbot):
    liver = _liver(window)
    window.masks.masks.add("liver", "SAM box", data=liver)
    summary = window.mask_compare.summary
    qtbot.waitUntil(lambda: "Dice 1.000" in summary.text(), timeout=5000)
    assert summary.isVisible() and "IoU 1.000 (3D)" in summary.text()
    assert summary.parent() is window.labels.legend

    # Half the liver, under the engine's name: matched by overlap, numbers from numpy.
    half = liver.copy()
    half[:, :, :256] = False
    window.masks.masks.add("segmented", "SAM box", data=half)
    expected = 2 * half.sum() / (half.sum() + liver.sum())
    qtbot.waitUntil(lambda: f"Dice {expected:.3f}" in summary.text(), timeout=5000)
    assert "(by overlap)" in summary.text()
    rows, cols = np.nonzero(liver[SLICE])
    model = Box(Plane.AXIAL, SLICE, cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
    window.assistant.set_user_box(model)
    compare = window.mask_compare.show_window()
    qtbot.waitExposed(compare)
    assert all(not p.pixmap().isNull() for p in compare.pictures)
    here = half[SLICE]
    slice_dice = 2 * here.sum() / (here.sum() + liver[SLICE].sum())
    text = compare.caption.text()
    assert f"Dice {slice_dice:.3f}" in text, text
    assert "model box vs reference's box IoU 1.00" in text, text


def test_export_dicom_sr_writes_seg_and_nifti_with_masks(window, tmp_path):
    liver = _liver(window)
    window.masks.masks.add("liver", "SAM box", data=liver)
    target = tmp_path / "report.dcm"
    window.exporter.ask_path = lambda *_: str(target)
    assert window.exporter.dicom_sr() == str(target)
    assert "SEG + NIfTI" in window.status.currentMessage()
    dump, sr = read_sr(target)
    group = sr.content.get_volumetric_roi_measurement_groups()[0]
    volume = group.get_measurements(name=codes.SCT.Volume)[0]
    assert volume.unit.value == "mL"
    assert float(volume.value) == pytest.approx(mask_volume_ml(liver, window.session.volume))
    seg = hd.seg.segread(tmp_path / "report-seg.dcm")
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["liver"]
    assert int(seg.pixel_array.astype(bool).sum()) == int(liver.sum())
    written = nib.load(tmp_path / "report-masks.nii.gz")
    bundled = nib.load(bundled_labels_path(window.session.volume))
    np.testing.assert_allclose(written.affine, bundled.affine, atol=1e-4)
    np.testing.assert_array_equal(
        np.asarray(written.dataobj) == 1, np.asarray(bundled.dataobj) == LIVER
    )


def test_a_real_segment_box_mask_is_exported_and_compared(make_main_window, qtbot, tmp_path):
    """A tiny random SAM in the real worker makes the mask; Export writes it; the legend
    gives its Dice against the label it overlaps."""
    from birdview.core.mask_compare import compare_mask
    from tests.inference.tiny_sam import build_tiny_sam

    window = make_main_window()
    window.settings.set_segmenter_dir(str(build_tiny_sam("sam", tmp_path / "sam", seed=0)))
    open_and_wait(qtbot, window, SAMPLE_CT)
    window.labels.open_bundled()
    qtbot.waitUntil(lambda: window.labels.overlay.label_map is not None, timeout=20000)
    window.model_panel.model_edit.setText(str(REPO / "resources" / "demo_model"))
    window.model_panel.precision_box.setCurrentText("fp32")
    window.model_panel.load()
    qtbot.waitUntil(lambda: window.assistant.model.state in ("ready", "error"), timeout=180000)
    labels = window.labels.overlay.label_map
    rows, cols = np.nonzero(np.asarray(labels.volume.voxels)[SLICE] == LIVER)
    box = Box(Plane.AXIAL, SLICE, cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
    window.assistant.set_user_box(box)
    window.session.set_slice(Plane.AXIAL, SLICE)
    assert window.segment.segment_box()
    qtbot.waitUntil(lambda: window.masks.masks.selected_entry is not None, timeout=120000)
    qtbot.waitUntil(lambda: window.masks.masks.selected_entry.data.any(), timeout=120000)
    entry = window.masks.masks.selected_entry
    found = compare_mask(entry.data, entry.name, labels, window.session.volume.identity)
    if found is not None:  # random weights: the mask may touch no label at all
        line = f"Dice {found.volume.dice:.3f}, IoU {found.volume.iou:.3f} (3D)"
        qtbot.waitUntil(lambda: line in window.mask_compare.summary.text(), timeout=5000)
    else:
        qtbot.wait(300)
        assert window.mask_compare.summary.text() == ""
    print("compared with:", found and (found.label.name, found.volume.dice))
    target = tmp_path / "out" / "report.dcm"
    target.parent.mkdir()
    window.exporter.ask_path = lambda *_: str(target)
    assert window.exporter.dicom_sr() == str(target), window.status.currentMessage()
    read_sr(target)
    seg = hd.seg.segread(tmp_path / "out" / "report-seg.dcm")
    assert int(seg.pixel_array.astype(bool).sum()) == int(entry.data.sum())
    nifti = np.asarray(nib.load(tmp_path / "out" / "report-masks.nii.gz").dataobj)
    assert int((nifti == 1).sum()) == int(entry.data.sum())
    window.bridge.shutdown()
