"""Mouse and keys as radiologists expect, driven with real Qt mouse and key events on the sample
CT: each default gesture of the mouse map, a changed map (saved in the settings and used by the
next window), and keys going to the view the user sees after a double-click promote and Ctrl+1."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from birdview.core.geometry import Plane
from birdview.core.mouse_map import MouseMap
from birdview.core.resources import sample_ct_dir
from birdview.core.session import Session
from birdview.ui.settings import Settings
from birdview.ui.slice_view import SliceView
from tests.ui.helpers import load_nifti_canonical, open_and_wait

NO_MOD = Qt.KeyboardModifier.NoModifier
CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier


def _send(view, kind, pos: QPoint, button, buttons, modifiers) -> None:
    widget = view.viewport()
    event = QMouseEvent(
        kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)), button, buttons, modifiers
    )
    QApplication.sendEvent(widget, event)


def drag(view, start: QPoint, end: QPoint, button, modifiers=NO_MOD, steps: int = 6) -> None:
    """Press, move with the button held, release — with ``modifiers`` held throughout."""
    _send(view, QEvent.Type.MouseButtonPress, start, button, button, modifiers)
    for n in range(1, steps + 1):
        pos = start + (end - start) * (n / steps)
        _send(view, QEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton, button, modifiers)
    _send(view, QEvent.Type.MouseButtonRelease, end, button, Qt.MouseButton.NoButton, modifiers)


def wheel(view, pos: QPoint, delta: int, modifiers=NO_MOD) -> None:
    widget = view.viewport()
    event = QWheelEvent(
        QPointF(pos),
        QPointF(widget.mapToGlobal(pos)),
        QPoint(0, 0),
        QPoint(0, delta),
        Qt.MouseButton.NoButton,
        modifiers,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)


@pytest.fixture(scope="module")
def ct():
    return load_nifti_canonical()


@pytest.fixture
def session(ct) -> Session:
    session = Session()
    session.open_volume(*ct)
    return session


@pytest.fixture
def view(qtbot, session) -> SliceView:
    view = SliceView(session, Plane.AXIAL)
    qtbot.addWidget(view)
    view.resize(500, 500)
    view.show()
    qtbot.waitExposed(view)
    return view


def _state(view: SliceView, session: Session) -> dict:
    centre = view.viewport().rect().center()
    scene = view.mapToScene(centre)
    return {
        "window": session.window,
        "zoom": view.zoom(),
        "centre": (round(scene.x(), 3), round(scene.y(), 3)),
        "slice": session.slice_index(Plane.AXIAL),
    }


def _changed(before: dict, after: dict) -> set[str]:
    """What changed; a zoom anchored off the centre moves the centre too: counted as zoom."""
    changed = {key for key in before if before[key] != after[key]}
    return changed - {"centre"} if "zoom" in changed else changed


C = QPoint(250, 250)


def test_default_left_drag_sets_window_and_level(view, session) -> None:
    before = _state(view, session)
    drag(view, C, C + QPoint(60, 40), Qt.MouseButton.LeftButton)
    after = _state(view, session)
    assert _changed(before, after) == {"window"}
    assert after["window"].width > before["window"].width  # right widens
    assert after["window"].center > before["window"].center  # down raises the level


def test_default_right_drag_zooms(view, session) -> None:
    before = _state(view, session)
    drag(view, C, C - QPoint(0, 80), Qt.MouseButton.RightButton)  # up: in
    after = _state(view, session)
    assert _changed(before, after) == {"zoom"}
    assert after["zoom"] > before["zoom"] * 1.5


def test_default_middle_drag_pans(view, session) -> None:
    before = _state(view, session)
    drag(view, C, C + QPoint(50, 30), Qt.MouseButton.MiddleButton)
    after = _state(view, session)
    assert _changed(before, after) == {"centre"}
    # The image follows the mouse: the scene point at the centre moves up-left by 50,30 px.
    dx = (before["centre"][0] - after["centre"][0]) * view.transform().m11()
    assert dx == pytest.approx(50, abs=1.5)


def test_default_wheel_scrolls_and_ctrl_wheel_zooms(view, session) -> None:
    before = _state(view, session)
    wheel(view, C, -120 * 3)  # towards the user: three slices on
    after = _state(view, session)
    assert _changed(before, after) == {"slice"}
    assert abs(after["slice"] - before["slice"]) == 3
    wheel(view, C, 240, CTRL)
    assert _changed(after, _state(view, session)) == {"zoom"}


def test_a_changed_map_routes_each_gesture_to_its_new_action(view, session) -> None:
    view.mouse_map = (
        MouseMap.default()
        .with_binding("right", "", "scroll")
        .with_binding("middle", "", "window")
        .with_binding("left", "shift", "zoom")
        .with_binding("wheel", "", "zoom")
    )
    before = _state(view, session)
    drag(view, C, C + QPoint(0, 60), Qt.MouseButton.RightButton)  # 60 px down: 10 slices on
    after = _state(view, session)
    assert _changed(before, after) == {"slice"}
    assert abs(after["slice"] - before["slice"]) == 60 // 6
    drag(view, C, C + QPoint(40, 0), Qt.MouseButton.MiddleButton)
    assert _changed(after, _state(view, session)) == {"window"}
    after = _state(view, session)
    drag(view, C, C - QPoint(0, 50), Qt.MouseButton.LeftButton, SHIFT)
    assert _changed(after, _state(view, session)) == {"zoom"}
    after = _state(view, session)
    wheel(view, C, -240)
    assert _changed(after, _state(view, session)) == {"zoom"}


def test_the_tool_gesture_can_move_to_another_button(qtbot, make_main_window) -> None:
    """With the tool on the right button, a right drag draws a ruler; a left drag pans."""
    window = make_main_window("1x1")
    open_and_wait(qtbot, window, sample_ct_dir())
    window.view_layout.set_mouse_map(
        MouseMap({("right", ""): "tool", ("left", ""): "pan", ("wheel", ""): "scroll"})
    )
    window.action_registry.tool_actions["ruler"].trigger()
    view = window.view_layout.main_view
    centre = view.viewport().rect().center()
    drag(view, centre, centre + QPoint(60, 0), Qt.MouseButton.LeftButton)
    assert len(window.measure.measurements.items) == 0
    drag(view, centre, centre + QPoint(80, 0), Qt.MouseButton.RightButton)
    assert [m.kind for m in window.measure.measurements.items] == ["ruler"]


def test_the_mapping_is_saved_and_the_next_window_uses_it(qtbot, make_main_window) -> None:
    changed = MouseMap.default().with_binding("right", "", "pan")
    Settings().set_mouse_map(changed)
    window = make_main_window()
    for view in window.view_layout.all_views():
        assert view.mouse_map.action("right") == "pan"
    assert Settings().mouse_map() == changed


def test_a_wrong_saved_mapping_falls_back_to_the_default(qtbot) -> None:
    settings = Settings()
    settings._qs.setValue("view/mouse_map", "left=fly")
    assert settings.mouse_map() == MouseMap.default()


def test_keys_go_to_the_view_the_user_sees_after_promote_and_ctrl_1(
    qtbot, make_main_window
) -> None:
    window = make_main_window("1+3")
    open_and_wait(qtbot, window, sample_ct_dir())
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    layout = window.view_layout
    small = layout.small_views[Plane.SAGITTAL]
    qtbot.mouseDClick(small.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(60, 60))
    assert window.session.main_plane is Plane.SAGITTAL
    qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_1, CTRL)
    assert window.session.layout == "1x1" and not small.isVisible()
    focused = QApplication.focusWidget()
    assert focused is layout.main_view, f"keys go to {focused!r}"
    # A zoom of the main view, then F (fit) typed: the view on screen fits again.
    main = layout.main_view
    fitted = main.zoom()
    main.zoom_by(3.0, main.viewport().rect().center())
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_F)
    assert main.zoom() == pytest.approx(fitted, rel=1e-3)
    before = window.session.slice_index(Plane.SAGITTAL)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_PageDown)
    assert window.session.slice_index(Plane.SAGITTAL) != before


def test_f1_lists_the_mouse_map_and_every_shortcut_and_esc_closes_it(
    qtbot, make_main_window
) -> None:
    from PySide6.QtGui import QAction, QKeySequence

    window = make_main_window()
    window.view_layout.set_mouse_map(MouseMap.default().with_binding("right", "alt", "scroll"))
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    view = window.view_layout.main_view
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_F1)
    overlay = window.help_overlay
    assert overlay.isVisible() and overlay.geometry() == window.rect()
    text = overlay.label.text()
    assert "Alt+right drag" in text and "scroll through slices" in text  # the map in use
    assert "Middle drag" in text and "pan" in text
    # Every action of the window that has a shortcut is listed with its keys.
    native = QKeySequence.SequenceFormat.NativeText
    for action in window.findChildren(QAction):
        keys = action.shortcut().toString(native)
        if keys:
            assert f"<b>{keys}</b>" in text, f"{keys} ({action.text()}) missing"
    # Esc closes the sheet only; it does not also drop the chosen tool (the window's Esc does).
    window.action_registry.tool_actions["ruler"].setChecked(True)
    qtbot.keyClick(overlay, Qt.Key.Key_Escape)
    assert not overlay.isVisible()
    assert window.action_registry.tool_actions["ruler"].isChecked()
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert window.action_registry.tool_actions["window"].isChecked()
