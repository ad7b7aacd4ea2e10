"""The measurement tools driven by real mouse and key events on real `SliceView`s of the sample
CT and a real radiograph: what they measure is checked against distances and Hounsfield values
computed here from the DICOM files with pydicom and numpy (`tests.core.test_measure`)."""

from __future__ import annotations

import json
import math

import highdicom as hd
import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, Qt

from birdview.core.geometry import Plane
from birdview.core.measure import Measurement, measure
from birdview.core.measure_store import load_measurements, measurements_path, save_measurements
from birdview.core.session import Session
from birdview.ui.measure_controller import MeasureController
from birdview.ui.slice_view import SliceView
from birdview.ui.status_bar import StatusBar
from tests.core.test_exports import dsrdump
from tests.core.test_measure import CR_FILE, CT_DIR, ct, ct_truth, ellipse_mask, study
from tests.ui.helpers import click, drag, mouse, open_and_wait, wheel

HALF_PIXEL_MM = 0.5 * 0.9765625


@pytest.fixture
def session() -> Session:
    session = Session()
    session.open_volume(ct(), None, Plane.AXIAL)
    return session


def _view(qtbot, session, plane=Plane.AXIAL, size=600) -> SliceView:
    view = SliceView(session, plane)
    qtbot.addWidget(view)
    view.resize(size, size)
    view.show()
    qtbot.waitExposed(view)
    view.setFocus()
    return view


@pytest.fixture
def tools(qtbot, session, tmp_path):
    """(view, controller) on the axial CT, measurements saved in ``tmp_path``."""
    view = _view(qtbot, session)
    return view, MeasureController(session, [view], tmp_path, view)


def _screen(view: SliceView, x: float, y: float) -> QPoint:
    return view.image_to_viewport(x, y).toPoint()


def _zoom_in(view: SliceView) -> None:
    """About ×4 around the view's centre, so that a screen pixel is under 0.3 image pixels."""
    wheel(
        view.viewport(), view.viewport().rect().center(), 960, Qt.KeyboardModifier.ControlModifier
    )
    assert view.zoom() > 3.5


def _centre_px(view: SliceView) -> tuple[int, int]:
    x, y = view.viewport_to_image(view.viewport().rect().center())
    return int(x), int(y)


def test_ruler_drawn_with_the_mouse_equals_the_physical_distance(qtbot, session, tools):
    view, controller = tools
    messages = []
    controller.message.connect(messages.append)
    _zoom_in(view)
    cx, cy = _centre_px(view)
    a, b = (cx - 30, cy - 20), (cx + 35, cy + 25)  # two voxels, (column, row)
    window = session.window
    view.tool = "ruler"
    drag(
        view.viewport(),
        _screen(view, a[0] + 0.5, a[1] + 0.5),
        _screen(view, b[0] + 0.5, b[1] + 0.5),
        Qt.MouseButton.LeftButton,
    )
    (ruler,) = controller.measurements.items
    k = session.slice_index(Plane.AXIAL)
    truth = ct_truth()
    expected = np.linalg.norm(truth.position(*b, k) - truth.position(*a, k))
    length = measure(ruler, session.volume).length
    assert abs(length - expected) <= HALF_PIXEL_MM
    assert ruler.plane is Plane.AXIAL and ruler.slice_index == k
    assert messages[-1].startswith(f"Ruler: {length:.1f} mm") and "Pixel Spacing" in messages[-1]
    assert session.window == window  # the drag was the ruler's, not window/level
    assert controller.measurements.selected == 0


def test_ruler_across_coronal_slices(qtbot, session, tmp_path):
    """On a reformatted plane the ruler's mm come from the slice positions (2 mm apart)."""
    view = _view(qtbot, session, Plane.CORONAL, size=800)
    controller = MeasureController(session, [view], tmp_path, view)
    _zoom_in(view)
    cx, _ = _centre_px(view)
    n = session.volume.shape[0]
    view.tool = "ruler"
    top, bottom = _screen(view, cx + 0.5, 1.5), _screen(view, cx + 0.5, n - 1.5)
    drag(view.viewport(), top, bottom, Qt.MouseButton.LeftButton)
    (ruler,) = controller.measurements.items
    truth = ct_truth()
    j = session.slice_index(Plane.CORONAL)
    # Rows 1 and n-2 from the top are slices n-2 and 1 from the feet.
    expected = np.linalg.norm(truth.position(cx, j, n - 2) - truth.position(cx, j, 1))
    assert abs(measure(ruler, session.volume).length - expected) <= HALF_PIXEL_MM


def test_ruler_on_a_radiograph_states_its_calibration(qtbot, tmp_path):
    session = Session()
    session.open_volume(study(str(CR_FILE)), None, Plane.AXIAL)
    view = _view(qtbot, session, size=400)
    controller = MeasureController(session, [view], tmp_path, view)
    messages = []
    controller.message.connect(messages.append)
    view.tool = "ruler"
    drag(view.viewport(), _screen(view, 2, 2), _screen(view, 14, 2), Qt.MouseButton.LeftButton)
    (ruler,) = controller.measurements.items
    values = measure(ruler, session.volume)
    assert values.length == pytest.approx((ruler.points_px[1][0] - ruler.points_px[0][0]) * 0.1)
    assert "Imager Pixel Spacing at the detector, not corrected for magnification" in messages[-1]
    assert values.lines()[-1] == "at detector (not magnification-corrected)"  # on the image


def test_ellipse_roi_statistics_equal_numpy_on_the_same_pixels(qtbot, session, tools):
    view, controller = tools
    cx, cy = _centre_px(view)
    view.tool = "ellipse"
    drag(
        view.viewport(),
        _screen(view, cx - 40, cy - 25),
        _screen(view, cx + 30, cy + 35),
        Qt.MouseButton.LeftButton,
    )
    (roi,) = controller.measurements.items
    x1, y1, x2, y2 = roi.edges_px()
    assert (x2 - x1, y2 - y1) == (pytest.approx(70, abs=1.5), pytest.approx(60, abs=1.5))
    hu = ct_truth().hounsfield(session.slice_index(Plane.AXIAL))
    values = hu[ellipse_mask(hu.shape, x1, y1, x2, y2)]
    got = measure(roi, session.volume)
    assert got.pixel_count == values.size
    assert got.mean == pytest.approx(values.mean(), abs=1e-9)
    assert got.sd == pytest.approx(values.std(), abs=1e-9)
    assert (got.minimum, got.maximum) == (values.min(), values.max())


def test_angle_drawn_arm_by_arm(qtbot, session, tools):
    view, controller = tools
    cx, cy = _centre_px(view)
    view.tool = "angle"
    arm_end, vertex, other_end = (cx + 60, cy), (cx, cy), (cx + 30, cy - 52)
    drag(
        view.viewport(), _screen(view, *arm_end), _screen(view, *vertex), Qt.MouseButton.LeftButton
    )
    assert controller.measurements.items == ()  # one arm is not an angle yet
    click(view.viewport(), _screen(view, *other_end))
    (angle,) = controller.measurements.items
    truth = ct_truth()
    (ax, ay), (vx, vy), (bx, by) = angle.points_px
    first = np.array([(ax - vx) * truth.col_mm, (ay - vy) * truth.row_mm])
    second = np.array([(bx - vx) * truth.col_mm, (by - vy) * truth.row_mm])
    cosine = first @ second / np.linalg.norm(first) / np.linalg.norm(second)
    got = measure(angle, session.volume).angle_deg
    assert got == pytest.approx(math.degrees(math.acos(cosine)), abs=1e-9)
    assert got == pytest.approx(60, abs=1.5)  # what was aimed at


def test_move_resize_delete_undo_redo_with_mouse_and_keys(qtbot, session, tools):
    view, controller = tools
    items = controller.measurements
    cx, cy = _centre_px(view)
    view.tool = "rectangle"
    drag(
        view.viewport(),
        _screen(view, cx - 40, cy - 40),
        _screen(view, cx + 40, cy + 20),
        Qt.MouseButton.LeftButton,
    )
    (drawn,) = items.items
    x1, y1, x2, y2 = drawn.edges_px()

    # Move: drag inside, with the window tool (a press on a measurement edits it, not W/L).
    view.tool = "window"
    window = session.window
    start = _screen(view, (x1 + x2) / 2, (y1 + y2) / 2)
    drag(view.viewport(), start, start + QPoint(50, 30), Qt.MouseButton.LeftButton)
    assert session.window == window
    moved = items.items[0]
    per_screen_px = 1 / view.zoom()
    dx, dy = moved.edges_px()[0] - x1, moved.edges_px()[1] - y1
    assert (dx, dy) == (
        pytest.approx(50 * per_screen_px, abs=0.1),
        pytest.approx(30 * per_screen_px, abs=0.1),
    )
    assert moved.edges_px()[2] - moved.edges_px()[0] == pytest.approx(x2 - x1)

    # Resize: drag the bottom-right handle.
    mx1, my1, mx2, my2 = moved.edges_px()
    corner = _screen(view, mx2, my2)
    drag(view.viewport(), corner, corner + QPoint(20, 40), Qt.MouseButton.LeftButton)
    resized = items.items[0]
    assert resized.edges_px()[:2] == pytest.approx((mx1, my1))
    assert resized.edges_px()[2] == pytest.approx(mx2 + 20 * per_screen_px, abs=0.1)
    assert resized.edges_px()[3] == pytest.approx(my2 + 40 * per_screen_px, abs=0.1)
    assert measure(resized, session.volume).area > measure(moved, session.volume).area

    # Delete the selected one with the Delete key; undo and redo with the actions' keys.
    assert items.selected == 0
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert items.items == ()
    controller.undo_action.trigger()
    assert items.items == (resized,)
    controller.undo_action.trigger()
    assert items.items == (moved,)
    controller.redo_action.trigger()
    assert items.items == (resized,)
    assert controller.undo_action.isEnabled() and controller.redo_action.isEnabled()

    # Delete never removes a selected measurement the view does not show (another slice).
    items.select(0)
    session.scroll(Plane.AXIAL, 1)
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert items.items == (resized,)
    session.scroll(Plane.AXIAL, -1)

    # A click on empty image with the window tool deselects; Delete then removes nothing.
    click(view.viewport(), _screen(view, 5, 5))
    assert items.selected is None
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert items.items == (resized,)


def test_measurements_are_saved_per_study_and_come_back(qtbot, session, tools, tmp_path):
    view, controller = tools
    cx, cy = _centre_px(view)
    view.tool = "ruler"
    drag(
        view.viewport(),
        _screen(view, cx, cy),
        _screen(view, cx + 50, cy),
        Qt.MouseButton.LeftButton,
    )
    ct_items = controller.measurements.items
    ct_identity = session.volume.identity
    mr = study(str(CT_DIR.parent / "dcm4che_mr"))
    session.open_volume(mr, None, Plane.CORONAL)  # another study: the CT's are saved first
    assert load_measurements(ct_identity, tmp_path) == list(ct_items)
    assert controller.measurements.items == () and controller.measurements.study == mr.identity
    session.open_volume(ct(), None, Plane.AXIAL)
    assert controller.measurements.items == ct_items
    assert not controller.measurements.can_undo  # history belongs to the editing, not the file


def test_another_studys_file_is_set_aside_not_shown(qtbot, session, tmp_path):
    other = "content-sha256:" + "cd" * 32
    save_measurements(other, [Measurement("ruler", "axial", 1, ((0, 0), (9, 9)))], tmp_path)
    mine = measurements_path(session.volume.identity, tmp_path)
    measurements_path(other, tmp_path).rename(mine)
    view = _view(qtbot, session)
    controller = MeasureController(session, [view], tmp_path, view)
    assert controller.measurements.items == ()
    assert not mine.exists()
    (kept,) = tmp_path.glob("measurements-*.json.unreadable")
    assert json.loads(kept.read_text())["study_identity"] == other  # kept, not overwritten


def test_tool_keys_esc_and_the_measure_menu_in_the_main_window(qtbot, make_main_window):
    window = make_main_window()
    open_and_wait(qtbot, window, CT_DIR)
    view = window.view_layout.main_view
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_L)
    assert view.tool == "ruler" and window.action_registry.tool_actions["ruler"].isChecked()
    qtbot.keyClick(view, Qt.Key.Key_E)
    assert view.tool == "ellipse"
    qtbot.keyClick(view, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    assert view.tool == "angle"
    cx, cy = _centre_px(view)
    drag(
        view.viewport(),
        _screen(view, cx, cy),
        _screen(view, cx + 40, cy),
        Qt.MouseButton.LeftButton,
    )
    assert window.measure.layers[0].preview is not None  # an angle half drawn
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert view.tool == "window" and window.action_registry.window_tool_action.isChecked()
    assert window.measure.layers[0].preview is None and window.measure.measurements.items == ()
    qtbot.keyClick(view, Qt.Key.Key_L)
    drag(
        view.viewport(),
        _screen(view, cx, cy),
        _screen(view, cx, cy + 40),
        Qt.MouseButton.LeftButton,
    )
    assert len(window.measure.measurements) == 1
    control = Qt.KeyboardModifier.ControlModifier
    qtbot.keyClick(view, Qt.Key.Key_Z, control)
    assert len(window.measure.measurements) == 0
    qtbot.keyClick(view, Qt.Key.Key_Z, control | Qt.KeyboardModifier.ShiftModifier)
    assert len(window.measure.measurements) == 1
    titles = [a.text() for a in window.menuBar().actions()]
    assert titles.index("&Measure") == len(titles) - 2  # before Help


def test_value_under_the_mouse_is_the_files_hounsfield_value(qtbot, session):
    """The status bar's value (it was there before the measurement tools) against pydicom."""
    view = _view(qtbot, session)
    status = StatusBar(session)
    qtbot.addWidget(status)
    view.hovered.connect(status.show_voxel)
    cx, cy = _centre_px(view)
    for col, row in ((cx, cy), (cx - 77, cy + 41)):
        where = _screen(view, col + 0.5, row + 0.5)
        mouse(view.viewport(), QEvent.Type.MouseMove, where, Qt.MouseButton.NoButton)
        hu = ct_truth().hounsfield(session.slice_index(Plane.AXIAL))[row, col]
        assert status.cursor_label.text().endswith(f"  {hu:.6g} HU")


def test_file_export_writes_the_measurements_into_sr_and_json(qtbot, make_main_window, tmp_path):
    """File → Export with no question asked: the measurements alone make an SR and a JSON."""
    window = make_main_window()
    open_and_wait(qtbot, window, CT_DIR)
    view = window.view_layout.main_view
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_L)
    cx, cy = _centre_px(view)
    drag(
        view.viewport(),
        _screen(view, cx, cy),
        _screen(view, cx + 60, cy),
        Qt.MouseButton.LeftButton,
    )
    (ruler,) = window.measure.measurements.items
    length = measure(ruler, window.session.volume).length
    window.exporter.ask_path = lambda title, default, kind: str(
        tmp_path / ("sr.dcm" if "SR" in title else "findings.json")
    )
    assert window.exporter.dicom_sr() == str(tmp_path / "sr.dcm")
    dump = dsrdump(tmp_path / "sr.dcm")
    assert '(410668003,SCT,"Length")' in dump and "Measurement by the user" in dump
    sr = hd.sr.srread(tmp_path / "sr.dcm")
    (group,) = sr.content.get_planar_roi_measurement_groups()
    (value,) = group.get_measurements()
    assert float(value.value) == pytest.approx(length, abs=1e-4)
    assert window.exporter.json() == str(tmp_path / "findings.json")
    data = json.loads((tmp_path / "findings.json").read_text())
    assert data["measurements"]["items"][0]["values"]["length"]["value"] == pytest.approx(length)
    assert data["measurements"]["study_identity"] == window.session.volume.identity


def test_labels_of_crowded_measurements_never_print_over_each_other(qtbot):
    from PySide6.QtCore import QPointF, QRectF
    from PySide6.QtGui import QFont, QFontMetricsF

    from birdview.ui._measure_drawing import label_anchor, place_label

    metrics = QFontMetricsF(QFont())
    area = QRectF(0, 0, 300, 300)
    lines = ["Area 21.11 cm²", "Mean 26.9 HU  SD 67.2", "Min -114  Max 289 HU"]
    taken: list[QRectF] = []
    for n in range(6):  # six ROIs side by side, the last ones at the view's right edge
        corners = [QPointF(20 + 45 * n, 120), QPointF(50 + 45 * n, 150)]
        place_label(label_anchor("rectangle", corners), lines, metrics, corners, area, taken)
    assert len(taken) == 6
    for n, rect in enumerate(taken):
        assert rect.left() >= 4 and rect.width() > 0
        assert not any(rect.intersects(other) for other in taken[n + 1 :])


def test_naming_a_measurement_is_shown_saved_and_undoable(qtbot, session, tools, tmp_path):
    view, controller = tools
    cx, cy = _centre_px(view)
    view.tool = "ruler"
    drag(
        view.viewport(),
        _screen(view, cx, cy),
        _screen(view, cx + 50, cy),
        Qt.MouseButton.LeftButton,
    )
    asked = []
    controller.ask_name = lambda current: asked.append(current) or "  liver span "
    controller.name_action.trigger()
    (named,) = controller.measurements.items
    assert asked == [""] and named.label == "liver span"
    assert controller.layers[0]._lines(named, session.volume)[0] == "liver span"
    controller.save_now()
    assert load_measurements(session.volume.identity, tmp_path)[0].label == "liver span"
    controller.ask_name = lambda current: None  # cancelled: nothing changes
    controller.name_action.trigger()
    assert controller.measurements.items == (named,)
    controller.undo_action.trigger()
    assert controller.measurements.items[0].label == ""
