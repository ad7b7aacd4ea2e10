"""The label layer in the real window on the bundled CT: the bundled label map one click away,
on the right voxels in all three planes (checked against nibabel reading the file and the
CT's own DICOM geometry), the legend's per-label toggles, opacity and outline changing what
is drawn, refusal of another study's labels, the IoU of a model box with its label, and the
segmentation reopened with the study."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from birdview.core import geometry
from birdview.core.box import Box
from birdview.core.geometry import Plane
from tests.conftest import REPO, shared
from tests.ui.helpers import open_and_wait

CT = REPO / "resources" / "samples" / "totalseg_ct"
LABELS = REPO / "resources" / "samples" / "totalseg_ct_labels" / "example_seg_dicom.nii.gz"
CLASSES = REPO / "resources" / "samples" / "totalseg_ct_labels" / "classes.json"


@pytest.fixture
def window(make_main_window, qtbot):
    window = make_main_window("1+3")
    open_and_wait(qtbot, window, CT)
    assert window.session.volume is not None
    return window


def open_labels_and_wait(qtbot, window, path=LABELS) -> None:
    """Open a segmentation (read in a worker thread) and wait until it is shown or refused."""
    with qtbot.waitSignal(window.labels.finished, timeout=20000):
        window.labels.open_path(str(path))


def nibabel_labels_at(volume, plane: Plane, index: int) -> np.ndarray:
    """The label under each pixel of a view, found with nibabel alone: the pixel's patient
    position (from the CT's geometry) through the inverse of the NIfTI's RAS affine."""
    image = nib.load(str(LABELS))
    data = np.asarray(image.dataobj)
    rows, cols = geometry.extract_slice(volume, plane, index).shape[:2]
    rr, cc = np.mgrid[0:rows, 0:cols]
    pixels = zip(rr.ravel(), cc.ravel(), strict=True)
    ijk = np.stack([geometry.view_to_index(volume, plane, index, c, r) for r, c in pixels])
    lps = volume.index_to_lps(ijk)
    ras = lps * np.array([-1.0, -1.0, 1.0])
    voxel = np.rint(nib.affines.apply_affine(np.linalg.inv(image.affine), ras)).astype(int)
    return data[voxel[:, 0], voxel[:, 1], voxel[:, 2]].reshape(rows, cols)


def test_bundled_labels_land_on_the_right_voxels_in_all_three_planes(window, qtbot):
    labels = window.labels
    assert labels.bundled_action.isEnabled() and not labels.close_action.isEnabled()
    with qtbot.waitSignal(labels.finished, timeout=20000):
        labels.bundled_action.trigger()
    label_map = labels.overlay.label_map
    assert label_map is not None and label_map.path == str(LABELS)
    volume = window.session.volume
    liver = label_map.find("liver").value
    k = int(np.argmax((np.asarray(label_map.volume.voxels) == liver).sum(axis=(1, 2))))
    rows, cols = np.nonzero(label_map.slice(Plane.AXIAL, k) == liver)
    window.session.move_cursor((int(np.median(cols)), int(np.median(rows)), k))
    qtbot.wait(50)
    checked = set()
    for layer in labels.layers:
        view = layer.parent()
        if not view.isVisible():
            continue
        index = window.session.slice_index(view.plane)
        expected = nibabel_labels_at(volume, view.plane, index)
        drawn = layer.rgba
        assert drawn is not None and drawn.shape[:2] == expected.shape
        assert np.array_equal(drawn[..., 3] > 0, expected > 0), view.plane
        inside = expected == liver
        assert inside.any(), view.plane
        assert (drawn[inside][:, :3] == label_map.find("liver").colour).all()
        checked.add(view.plane)
    assert checked == set(Plane)
    names = json.loads(CLASSES.read_text())["ct_total"]["labels"]
    legend = [labels.legend.labels.item(r).text() for r in range(labels.legend.labels.count())]
    assert "adrenal gland right" in legend and len(legend) == len(label_map.classes)
    assert {c.name for c in label_map.classes} <= set(names.values())


def _view_pixel(window, label_map, value):
    """A viewport point of the main view inside label ``value``, and the QColor drawn there."""
    view = window.view_layout.main_view
    index = window.session.slice_index(view.plane)
    rows, cols = np.nonzero(label_map.slice(view.plane, index) == value)
    row, col = int(np.median(rows)), int(np.median(cols))
    point = view.image_to_viewport(col + 0.5, row + 0.5).toPoint()
    return view, point


def _colour_at(view, point: QPoint):
    return view.viewport().grab().toImage().pixelColor(point)


def test_toggle_opacity_and_outline_change_what_is_drawn(window, qtbot):
    labels = window.labels
    open_labels_and_wait(qtbot, window)
    label_map = labels.overlay.label_map
    liver = label_map.find("liver")
    k = int(np.argmax((np.asarray(label_map.volume.voxels) == liver.value).sum(axis=(1, 2))))
    window.session.set_main_plane(Plane.AXIAL)
    window.session.set_slice(Plane.AXIAL, k)
    qtbot.wait(50)
    view, point = _view_pixel(window, label_map, liver.value)
    layer = next(layer for layer in labels.layers if layer.parent() is view)
    with_labels = _colour_at(view, point)
    # The legend's check box switches the liver off (the other labels stay).
    legend = labels.legend.labels
    row = next(r for r in range(legend.count()) if legend.item(r).text() == "liver")
    others = (layer.rgba[..., 3] > 0) & (label_map.slice(Plane.AXIAL, k) != liver.value)
    legend.item(row).setCheckState(Qt.CheckState.Unchecked)
    assert liver.value in labels.overlay.hidden
    assert not layer.rgba[label_map.slice(Plane.AXIAL, k) == liver.value][:, 3].any()
    assert (layer.rgba[others][:, 3] > 0).all()
    without = _colour_at(view, point)
    assert with_labels != without
    legend.item(row).setCheckState(Qt.CheckState.Checked)
    # Opacity: the slider moves the liver's colour towards the label's.
    labels.legend.opacity.setValue(100)
    qtbot.wait(20)
    opaque = _colour_at(view, point)
    assert (opaque.red(), opaque.green(), opaque.blue()) == pytest.approx(liver.colour, abs=12)
    labels.legend.opacity.setValue(0)
    assert _colour_at(view, point) == without
    # Outline: only the border is drawn, the inside shows the CT.
    labels.legend.opacity.setValue(60)
    labels.legend.style_box.setCurrentIndex(1)
    assert labels.overlay.outline and _colour_at(view, point) == without
    assert 0 < (layer.rgba[..., 3] > 0).sum() < (label_map.slice(Plane.AXIAL, k) > 0).sum()
    labels.legend.shown.setChecked(False)
    assert not layer.rgba[..., 3].any()


def test_labels_of_another_study_are_refused_with_the_file_named(window, qtbot):
    labels = window.labels
    open_labels_and_wait(qtbot, window)
    before = labels.overlay.label_map
    open_labels_and_wait(qtbot, window, shared("totalseg", "example_seg.nii.gz"))
    dialog = window.reporter.dialog
    assert dialog is not None and dialog.text() == "Unable to open the segmentation"
    assert "'example_seg.nii.gz'" in dialog.informativeText()
    assert "122×101×30 voxels and the study's 512×512×20" in dialog.informativeText()
    assert labels.overlay.label_map is before  # what was shown stays


def test_other_study_closes_the_labels_and_the_bundled_action(window, qtbot):
    labels = window.labels
    open_labels_and_wait(qtbot, window)
    open_and_wait(qtbot, window, shared("dcm4che_mr"))
    assert labels.overlay.label_map is None and not labels.bundled_action.isEnabled()
    assert all(layer.rgba is None for layer in labels.layers)


def test_iou_of_a_model_box_with_its_label_is_shown(window, qtbot):
    labels = window.labels
    open_labels_and_wait(qtbot, window)
    label_map = labels.overlay.label_map
    spleen = label_map.find("spleen").value
    k = int(np.argmax((np.asarray(label_map.volume.voxels) == spleen).sum(axis=(1, 2))))
    rows, cols = np.nonzero(label_map.slice(Plane.AXIAL, k) == spleen)
    x1, y1, x2, y2 = cols.min(), rows.min(), cols.max() + 1, rows.max() + 1
    turn = window.assistant.begin("Where is the spleen?", task="VG", slice_index=k)
    half = Box(Plane.AXIAL, k, x1, y1, (x1 + x2) / 2, y2, label="Spleen")
    window.assistant.finish(turn.turn_id, answer="<ref>spleen</ref>", boxes=[half])
    text = labels.legend.agreement.text()
    name = geometry.slice_name(window.session.volume, Plane.AXIAL, k)
    assert f"spleen (axial {name}): IoU 0.50 with the label's box" in text
    assert labels.legend.agreement.isVisibleTo(labels.legend)


def test_the_segmentation_reopens_with_its_study(make_main_window, qtbot):
    first = make_main_window()
    open_and_wait(qtbot, first, CT)
    with qtbot.waitSignal(first.labels.finished, timeout=20000):
        first.labels.bundled_action.trigger()
    liver = first.labels.overlay.label_map.find("liver").value
    first.labels.legend.opacity.setValue(80)
    first.labels.legend.style_box.setCurrentIndex(1)
    first.labels.overlay.set_shown(liver, False)
    first.close()  # saves how the labels were drawn
    second = make_main_window()
    with qtbot.waitSignal(second.labels.finished, timeout=30000):
        second.open_path(str(CT))
    reopened = second.labels.overlay
    assert reopened.label_map is not None and reopened.label_map.path == str(LABELS)
    assert (reopened.opacity, reopened.outline, reopened.hidden) == (0.8, True, {liver})
    assert second.labels.legend.style_box.currentText() == "Outline"
    second.labels.close_action.trigger()
    third = make_main_window()
    open_and_wait(qtbot, third, CT)
    qtbot.wait(300)
    assert third.labels.overlay.label_map is None


def test_legend_text_is_not_clipped_at_the_docks_narrowest(window, qtbot):
    open_labels_and_wait(qtbot, window)
    legend = window.labels.legend
    window.resizeDocks([window.labels_dock], [1], Qt.Orientation.Horizontal)  # narrowest
    qtbot.wait(50)
    names = legend.labels
    metrics = names.fontMetrics()
    icon = names.iconSize().width() if names.iconSize().isValid() else 16
    for row in range(names.count()):
        item = names.item(row)
        rect = names.visualItemRect(item)
        needed = metrics.horizontalAdvance(item.text()) + icon + 3 * names.spacing() + 12
        lines = rect.height() // metrics.height()
        assert needed <= rect.width() * max(lines, 1), item.text()
        assert rect.right() <= names.viewport().width(), item.text()
    source = legend.source
    assert source.heightForWidth(source.width()) <= source.height()


def test_labels_made_in_code_are_shown_on_their_study_only(window, qtbot):
    """A segmentation engine's masks reach the same layer: here bone (HU > 300) of the CT."""
    from birdview.core.labels import LabelMismatchError, label_map_from_array

    volume = window.session.volume
    bone = (np.asarray(volume.voxels) > 300).astype(np.uint8)
    label_map = label_map_from_array(bone, volume, {1: "bone"}, source="threshold")
    window.labels.show(label_map)
    qtbot.wait(20)
    view = window.view_layout.main_view
    layer = next(layer for layer in window.labels.layers if layer.parent() is view)
    index = window.session.slice_index(view.plane)
    expected = geometry.extract_slice(volume, view.plane, index) > 300
    assert expected.any() and np.array_equal(layer.rgba[..., 3] > 0, expected)
    # While the next study loads its preview shows no labels; then they are gone.
    view.show_preview(np.zeros((8, 8), dtype=np.int16))
    assert layer.rgba is None
    open_and_wait(qtbot, window, shared("dcm4che_mr"))
    with pytest.raises(LabelMismatchError, match="'threshold' as it was made for another study"):
        window.labels.show(label_map)
    assert window.labels.overlay.label_map is None


def test_the_legend_names_the_label_under_the_mouse(window, qtbot):
    from PySide6.QtCore import QEvent

    from tests.ui.helpers import mouse

    open_labels_and_wait(qtbot, window)
    label_map = window.labels.overlay.label_map
    spleen = label_map.find("spleen").value
    k = int(np.argmax((np.asarray(label_map.volume.voxels) == spleen).sum(axis=(1, 2))))
    window.session.set_main_plane(Plane.AXIAL)
    window.session.set_slice(Plane.AXIAL, k)
    view, point = _view_pixel(window, label_map, spleen)
    mouse(view.viewport(), QEvent.Type.MouseMove, point, Qt.MouseButton.NoButton)
    assert window.labels.legend.hovered.text() == "Under the mouse: <b>spleen</b>"
    mouse(view.viewport(), QEvent.Type.MouseMove, QPoint(2, 2), Qt.MouseButton.NoButton)
    assert window.labels.legend.hovered.text() == ""


def test_a_seg_series_picked_in_the_browser_goes_over_the_study(window, qtbot, tmp_path):
    """A folder holding the CT and a SEG of it (written by highdicom from the CT's files):
    picking the SEG in the series browser overlays it instead of opening it as images."""
    import shutil

    from tests.core.seg_files import write_sample_seg

    shutil.copytree(CT, tmp_path / "study" / "ct")
    names, expected = write_sample_seg(tmp_path / "study" / "seg.dcm", window.session.volume)
    open_and_wait(qtbot, window, tmp_path / "study")
    entries = {e.modality: e for e in window.session.catalog.entries}
    assert [e.modality for e in window.session.catalog.entries] == ["SEG", "CT"]
    ct = window.session.volume  # the CT opens, though the SEG is listed first
    assert ct.modality == "CT" and ct.shape == (20, 512, 512)
    with qtbot.waitSignal(window.labels.finished, timeout=20000):
        window.series_browser.series_requested.emit(entries["SEG"])
    assert window.session.volume is ct  # still the CT, now with labels
    label_map = window.labels.overlay.label_map
    assert label_map.kind == "seg" and [c.name for c in label_map.classes] == names
    assert np.array_equal(np.asarray(label_map.volume.voxels), expected)
