"""Cine in the real main window on the sample CT: frames advance at about the set rate, Space
pauses, it loops through the view the user sees, and it stops when the study changes."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QPoint, Qt

from birdview.core import geometry
from birdview.core.geometry import Plane
from birdview.core.resources import resources_dir, sample_ct_dir
from tests.ui.helpers import click, open_and_wait


@pytest.fixture
def window(make_main_window, qtbot):
    window = make_main_window()
    open_and_wait(qtbot, window, sample_ct_dir())
    assert window.session.volume is not None
    return window


def _count_changes(qtbot, session, seconds: float) -> tuple[int, float]:
    """Slice changes seen while the event loop runs for ``seconds``, and the time measured."""
    seen = []
    session.events.cursor_ijk.connect(seen.append)
    started = time.perf_counter()
    qtbot.wait(int(seconds * 1000))
    elapsed = time.perf_counter() - started
    session.events.cursor_ijk.disconnect(seen.append)
    return len(seen), elapsed


def test_frames_advance_at_about_the_set_rate_and_space_pauses(window, qtbot) -> None:
    cine = window.review.cine
    cine.fps_box.setValue(20)  # as the user types it in the tool bar
    view = window.view_layout.main_view
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Space)
    assert cine.playing and cine.play_action.isChecked()
    frames, elapsed = _count_changes(qtbot, window.session, 1.5)
    expected = 20 * elapsed
    # Generous: two shared CPU cores; a timer never runs faster than asked.
    assert 0.5 * expected <= frames <= 1.15 * expected + 1, (frames, elapsed)
    qtbot.keyClick(view, Qt.Key.Key_Space)
    assert not cine.playing
    frames, _ = _count_changes(qtbot, window.session, 0.4)
    assert frames == 0


def test_a_higher_rate_plays_more_frames(window, qtbot) -> None:
    cine = window.review.cine
    counts = {}
    for fps in (5, 30):
        cine.set_fps(fps)
        cine.play()
        counts[fps], elapsed = _count_changes(qtbot, window.session, 1.2)
        cine.pause()
        assert counts[fps] <= fps * elapsed * 1.15 + 1
    assert counts[30] >= 2 * counts[5]


def test_fps_is_clamped_to_1_to_60(window) -> None:
    cine = window.review.cine
    cine.set_fps(500)
    assert cine.fps == 60
    cine.set_fps(0)
    assert cine.fps == 1
    assert (cine.fps_box.minimum(), cine.fps_box.maximum()) == (1, 60)


def test_loops_through_the_view_the_user_sees(window, qtbot) -> None:
    session = window.session
    session.set_layout("1+3")
    coronal = window.view_layout.small_views[Plane.CORONAL]
    qtbot.waitExposed(coronal)
    click(coronal.viewport(), QPoint(coronal.viewport().width() // 2, 20))  # the user's view
    volume = session.volume
    count = geometry.slice_count(volume, Plane.CORONAL)
    last = geometry.reading_position(volume, Plane.CORONAL, count - 1)
    session.set_slice(Plane.CORONAL, last)
    axial_before = session.slice_index(Plane.AXIAL)
    cine = window.review.cine
    assert cine.active_view() is coronal
    cine.set_fps(60)
    with qtbot.waitSignal(session.events.cursor_ijk, timeout=2000):
        cine.play()
    cine.pause()
    # After the last coronal slice comes the first again; the axial slice stays.
    index = session.slice_index(Plane.CORONAL)
    assert geometry.reading_position(volume, Plane.CORONAL, index) == 0
    assert session.slice_index(Plane.AXIAL) == axial_before


def test_stops_when_the_study_changes(window, qtbot) -> None:
    cine = window.review.cine
    cine.play()
    assert cine.playing
    open_and_wait(qtbot, window, resources_dir() / "samples" / "dcm4che_mr")
    assert window.session.volume.modality == "MR"
    assert not cine.playing and not cine.play_action.isChecked()
    frames, _ = _count_changes(qtbot, window.session, 0.3)
    assert frames == 0


def test_nothing_open_nothing_plays(make_main_window) -> None:
    window = make_main_window()
    window.review.cine.play()
    assert not window.review.cine.playing


def test_space_in_a_text_box_types_a_space(window, qtbot) -> None:
    box = window.chat_panel.input
    box.setFocus()
    qtbot.keyClicks(box, "the liver")
    assert box.text() == "the liver"
    assert not window.review.cine.playing
