"""The segmentation flow in the real window with the real worker and a tiny random SAM on the
sample CT: box → segment → propagate into the study's mask set, the Masks panel's numbers,
masks from the model's answer boxes, cancel, brush/eraser with undo routed by the active tool,
and the masks kept per study beside the session."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QKeySequence

from birdview.core.box import Box
from birdview.core.geometry import Plane
from birdview.core.mask_store import masks_path
from birdview.core.measure import Measurement
from birdview.ui.segment_controls import VOXTELL_MISSING
from tests.conftest import REPO
from tests.inference.tiny_sam import build_tiny_sam
from tests.ui.segment_window import open_segment_window, wait_for
from tests.ui.test_segment_box import EDGES, SAMPLE_CT, SLICE

SAMPLE_MR = REPO / "resources" / "samples" / "dcm4che_mr"


@pytest.fixture(scope="module")
def window(qapp, tmp_path_factory):
    folder = tmp_path_factory.mktemp("segment_flow")
    window = open_segment_window(folder, build_tiny_sam("sam", folder / "sam", seed=0), SAMPLE_CT)
    yield window
    window.close()


def _open(window, path) -> None:
    old = window.session.volume
    window.open_path(str(path))
    wait_for(lambda: window.session.volume is not None and window.session.volume is not old, 60)


def _segment(window, box: Box):
    masks = window.masks.masks
    count = len(masks)
    window.assistant.set_user_box(box)
    window.segment.segment_action.trigger()
    wait_for(lambda: len(masks) == count + 1, 120)
    return masks.selected_entry


def _propagate(window) -> None:
    window.segment.propagate_action.trigger()
    assert window.segment.busy
    wait_for(lambda: not window.segment.busy, 180)


def test_box_segment_propagate_fills_the_volume_and_the_panel_gives_its_ml(window):
    volume, masks = window.session.volume, window.masks.masks
    masks.reset(volume.identity, volume.shape)
    entry = _segment(window, Box(Plane.AXIAL, SLICE, *EDGES, label="organ"))
    seed = entry.data[SLICE].copy()
    assert seed.any() and entry.voxels == int(seed.sum())
    bar, moved = window.mask_panel.progress, []  # (when, value) of each move of the dock's bar
    bar.valueChanged.connect(record := lambda value: moved.append((time.monotonic(), value)))
    try:
        _propagate(window)
    finally:
        bar.valueChanged.disconnect(record)
    # The bar starts at 0 and ends at 20 of 20 at once; between, it moves at most every 0.1 s
    # (each move repaints it), whatever the pace of the slices.
    assert moved[0][1] == 0 and moved[-1][1] == 20 and bar.maximum() == 20
    gaps = [b[0] - a[0] for a, b in zip(moved[:-2], moved[1:-1], strict=True)]
    assert all(gap >= 0.09 for gap in gaps), gaps
    reply = window.segment.last_reply
    assert not reply.cancelled and [s.slice_index for s in reply.slices] == list(range(20))
    assert len(masks) == 1  # propagation filled the selected mask, one slice each
    for piece in reply.slices:
        np.testing.assert_array_equal(entry.data[piece.slice_index] != 0, piece.mask.unpack())
    filled = [k for k in range(20) if entry.data[k].any()]
    assert len(filled) > 1, "the tiny model carried the mask to no other slice"
    # The panel's mL: voxel count × one voxel's volume, computed here from the spacing.
    window.mask_panel.update_numbers()  # computed in a thread, filled in when done
    wait_for(lambda: window.mask_panel.row_text(0)[2] != "…", 60)
    row = window.mask_panel.row_text(0)
    voxel_ml = float(np.prod(volume.spacing_mm)) / 1000.0
    assert row[0] == "organ" and row[2] == f"{np.count_nonzero(entry.data) * voxel_ml:.2f}"
    assert "HU" in row[4] and "×" in row[3]
    # The whole propagation is one undo step.
    assert masks.undo()
    assert np.array_equal(np.flatnonzero(entry.data.any(axis=(1, 2))), [SLICE])
    assert masks.redo() and [k for k in range(20) if entry.data[k].any()] == filled


def test_the_dock_bar_moves_at_most_every_tenth_of_a_second_when_slices_come_fast(window):
    from PySide6.QtWidgets import QApplication

    bar, moved = window.mask_panel.progress, []
    bar.valueChanged.connect(record := lambda value: moved.append((time.monotonic(), value)))
    try:
        for done in range(51):  # a slice every 10 ms, as a fast segmenter sends them
            window.segment.progress.emit(done, 50)
            end = time.monotonic() + 0.01
            while time.monotonic() < end:
                QApplication.processEvents()
    finally:
        bar.valueChanged.disconnect(record)
    assert moved[0][1] == 0 and moved[-1][1] == 50 and bar.text() == "50 / 50 slices"
    gaps = [b[0] - a[0] for a, b in zip(moved[:-2], moved[1:-1], strict=True)]
    assert all(gap >= 0.09 for gap in gaps), gaps
    assert len(moved) <= 10  # not 51 repaints


def test_a_box_on_a_coronal_view_propagates_through_the_coronal_slices(window):
    volume, masks = window.session.volume, window.masks.masks
    masks.reset(volume.identity, volume.shape)
    row = 256  # coronal slice j; its image is (k reversed, i): 20 rows x 512 columns
    window.session.set_main_plane(Plane.AXIAL)  # the plane comes from the mask, not the view
    entry = _segment(window, Box(Plane.CORONAL, row, 150.0, 2.0, 330.0, 17.0, label="organ"))
    assert np.flatnonzero(entry.data.any(axis=(0, 2))).tolist() == [row]
    _propagate(window)
    reply = window.segment.last_reply
    count = volume.shape[1]
    assert not reply.cancelled and [s.slice_index for s in reply.slices] == list(range(count))
    for piece in reply.slices:  # each streamed mask is that coronal slice, head up
        shown = entry.data[::-1, piece.slice_index, :] != 0
        np.testing.assert_array_equal(shown, piece.mask.unpack())
    filled = np.flatnonzero(entry.data.any(axis=(0, 2)))
    assert len(filled) > 1 and row in filled, "the tiny model carried the mask to no other row"
    message = window.status.currentMessage()
    assert f"of {count} coronal slices" in message, message
    assert masks.undo() and np.flatnonzero(entry.data.any(axis=(0, 2))).tolist() == [row]


def test_cancel_keeps_the_slices_that_arrived(window):
    volume, masks = window.session.volume, window.masks.masks
    masks.reset(volume.identity, volume.shape)
    entry = _segment(window, Box(Plane.AXIAL, SLICE, *EDGES, label="organ"))
    before = entry.data.copy()

    def cancel_after_first(done: int, _total: int) -> None:
        if done == 1:
            window.segment.cancel()

    window.segment.progress.connect(cancel_after_first)
    try:
        _propagate(window)
    finally:
        window.segment.progress.disconnect(cancel_after_first)
    reply = window.segment.last_reply
    assert reply.cancelled and 1 <= len(reply.slices) < 20
    arrived = {s.slice_index: s.mask.unpack() for s in reply.slices}
    for k in range(20):
        expected = arrived[k] if k in arrived else before[k] != 0
        np.testing.assert_array_equal(entry.data[k] != 0, expected)


def test_masks_from_the_answer_boxes(window):
    volume, masks = window.session.volume, window.masks.masks
    masks.reset(volume.identity, volume.shape)
    boxes = (
        Box(Plane.AXIAL, 5, 150, 160, 330, 300, label="liver"),
        Box(Plane.AXIAL, 12, 200, 180, 300, 280, label="spleen"),
    )
    # An answer as the chat records one (the language model is not asked: the boxes are
    # what is under test, not what a random demo model would find).
    turn = window.assistant.begin("where are the organs?", slice_index=5)
    window.assistant.finish(turn.turn_id, answer="two organs", boxes=boxes)
    assert window.segment.masks_from_answer() == 2
    wait_for(lambda: len(masks) == 2, 120)
    made = {e.name: e for e in masks}
    assert set(made) == {"liver", "spleen"} and {e.source for e in masks} == {"from model box"}
    for box in boxes:
        data = made[box.label].data
        assert not np.delete(data, box.slice_index, axis=0).any()
        ys, xs = np.nonzero(data[box.slice_index])
        assert len(ys) and window.segment.last_measures is not None
    window.assistant.clear()


def _view_point(view, x: float, y: float) -> QPoint:
    return view.image_to_viewport(x, y).toPoint()


def _expected_disk(shape, x: float, y: float, radius: float) -> np.ndarray:
    out = np.zeros(shape, bool)
    for r in range(shape[0]):
        for c in range(shape[1]):
            out[r, c] = (c + 0.5 - x) ** 2 + (r + 0.5 - y) ** 2 <= radius**2
    return out


def test_brush_and_eraser_paint_exactly_the_stroke_and_ctrl_z_follows_the_tool(window, qtbot):
    volume, masks = window.session.volume, window.masks.masks
    masks.reset(volume.identity, volume.shape)
    view = window.view_layout.main_view
    assert view.plane is Plane.AXIAL
    window.session.set_slice(Plane.AXIAL, SLICE)
    index = window.session.slice_index(Plane.AXIAL)
    window.action_registry.tool_actions["brush"].trigger()
    window.masks.brush_radius = 5
    point = _view_point(view, 200.5, 220.5)
    x, y = view.viewport_to_image(point)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    entry = masks.selected_entry
    assert entry is not None and entry.source == "brush"
    disk = _expected_disk(volume.shape[1:], x, y, 5)
    expected = np.zeros(volume.shape, bool)
    expected[index] = disk
    np.testing.assert_array_equal(entry.data != 0, expected)
    # The eraser takes out a smaller disk around a nearby point.
    window.action_registry.tool_actions["eraser"].trigger()
    window.masks.brush_radius = 3
    point2 = _view_point(view, 203.5, 220.5)
    x2, y2 = view.viewport_to_image(point2)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=point2)
    expected[index] &= ~_expected_disk(volume.shape[1:], x2, y2, 3)
    np.testing.assert_array_equal(entry.data != 0, expected)
    # A measurement exists too: under a mask tool Ctrl+Z undoes the mask edit only.
    measurements = window.measure.measurements
    measurements.add(Measurement("ruler", Plane.AXIAL, index, ((10.0, 10.0), (50.0, 10.0))))
    undo_keys = QKeySequence(QKeySequence.StandardKey.Undo)
    qtbot.keyClick(view, undo_keys[0].key(), undo_keys[0].keyboardModifiers())
    assert len(measurements) == 1
    expected[index] = disk
    np.testing.assert_array_equal(entry.data != 0, expected)
    # Under a measurement tool Ctrl+Z is the measurements' again.
    window.action_registry.tool_actions["ruler"].trigger()
    qtbot.keyClick(view, undo_keys[0].key(), undo_keys[0].keyboardModifiers())
    assert len(measurements) == 0
    np.testing.assert_array_equal(entry.data != 0, expected)
    window.action_registry.tool_actions["window"].trigger()


def test_masks_are_kept_per_study_and_refused_for_another(window):
    volume, masks = window.session.volume, window.masks.masks
    masks.reset(volume.identity, volume.shape)
    entry = _segment(window, Box(Plane.AXIAL, SLICE, *EDGES, label="kept"))
    saved = entry.data.copy()
    ct_identity = volume.identity
    _open(window, SAMPLE_MR)  # saves the CT's masks, holds the MR's (none)
    assert len(masks) == 0 and masks.study == window.session.volume.identity
    mr_identity = window.session.volume.identity
    _open(window, SAMPLE_CT)
    assert [e.name for e in masks] == ["kept"]
    np.testing.assert_array_equal(masks.entries[0].data, saved)
    # The CT's file put where the MR's would be is refused when the MR opens.
    folder = window.controller.session_dir
    masks_path(mr_identity, folder).write_bytes(masks_path(ct_identity, folder).read_bytes())
    errors: list = []
    original = window.masks._report_error
    window.masks._report_error = lambda title, message: errors.append((title, message))
    try:
        _open(window, SAMPLE_MR)
    finally:
        window.masks._report_error = original
    assert len(masks) == 0
    assert errors and "belongs to another study" in errors[0][1]
    assert not masks_path(mr_identity, folder).exists()  # set aside, not reused
    _open(window, SAMPLE_CT)


def test_text_prompt_without_a_text_model_says_what_to_choose(window):
    window.mask_panel.text_edit.setText("liver")
    window.mask_panel._on_text()
    assert window.mask_panel.text_note.text() == VOXTELL_MISSING


def test_masks_from_a_volume_sweep_propagate_its_boxes_into_one_mask(window):
    from birdview.core.assistant import SWEEP_TASK

    volume, masks = window.session.volume, window.masks.masks
    masks.reset(volume.identity, volume.shape)
    boxes = tuple(Box(Plane.AXIAL, k, 150, 160, 330, 300, label="liver") for k in (6, 7, 9))
    turn = window.assistant.begin("liver", task=SWEEP_TASK)
    window.assistant.finish_sweep(turn.turn_id, volume, boxes)
    assert window.segment.masks_from_answer() == 1
    wait_for(lambda: not window.segment.busy, 180)
    assert len(masks) == 1
    entry = masks.entries[0]
    assert (entry.name, entry.source) == ("liver", "from model box")
    reply = window.segment.last_reply
    assert reply.method == "boxes" and [s.slice_index for s in reply.slices] == [6, 7, 8, 9]
    for piece in reply.slices:
        np.testing.assert_array_equal(entry.data[piece.slice_index] != 0, piece.mask.unpack())
    assert not entry.data[8].any()  # no box there: nothing segmented
    outside = np.delete(entry.data, [6, 7, 8, 9], axis=0)
    assert not outside.any() and entry.data[[6, 7, 9]].any()
    window.assistant.clear()


def test_text_prompt_with_a_sam3_segmenter_segments_every_slice(window, tmp_path):
    volume, masks = window.session.volume, window.masks.masks
    masks.reset(volume.identity, volume.shape)
    settings = window.segment._settings
    before = settings.segmenter_dir()
    settings.set_segmenter_dir(str(build_tiny_sam("sam3", tmp_path / "sam3", seed=0)))
    try:
        window.mask_panel.text_edit.setText("liver")
        window.mask_panel._on_text()
        assert window.segment.busy
        wait_for(lambda: not window.segment.busy, 240)
    finally:
        settings.set_segmenter_dir(before)
    reply = window.segment.last_reply
    assert reply.method == "text" and [s.slice_index for s in reply.slices] == list(range(20))
    entry = masks.entries[0]
    assert (entry.name, entry.source) == ("liver", "text prompt")
    for piece in reply.slices:
        np.testing.assert_array_equal(entry.data[piece.slice_index] != 0, piece.mask.unpack())
