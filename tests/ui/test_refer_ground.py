"""Refer and ground through the whole product: the real window, the real worker process and a
tiny model taught known answers about the bundled CT (`tests.ui.taught`).

One window (and worker) serves the module; the test that kills the worker runs last and waits
for the automatic restart.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtGui import QColor

from birdview.core.box import Box
from birdview.core.exports import box_colour
from birdview.core.geometry import Plane, slice_name
from birdview.ui.settings import Settings
from tests.conftest import REPO
from tests.ui.segment_window import wait_for
from tests.ui.taught import TaughtModel

SAMPLE_CT = REPO / "resources" / "samples" / "totalseg_ct"
GRID_PX = 512 / 1000  # one unit of the 0–1000 box grid on the 512-pixel slice


@pytest.fixture(scope="module")
def window(qapp, taught_model: TaughtModel, tmp_path_factory):
    """The main window with the sample CT open and the taught model loaded."""
    from birdview.ui.main_window import MainWindow

    folder = tmp_path_factory.mktemp("refer_ground")
    settings = Settings(QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat))
    window = MainWindow(settings, session_dir=str(folder / "sessions"), autoload_model=False)
    window.resize(1400, 900)
    window.show()
    window.open_path(str(SAMPLE_CT))
    wait_for(lambda: window.session.volume is not None)
    window.model_panel.model_edit.setText(str(taught_model.model_dir))
    window.model_panel.precision_box.setCurrentText("fp32")
    window.model_panel.load()
    wait_for(lambda: window.assistant.model.state in ("ready", "error"), 120)
    assert window.assistant.model.ready, window.assistant.model.message
    yield window
    window.close()
    assert window.bridge.client is None  # the worker was shut down with the window


def last_turn(window):
    wait_for(lambda: not window.assistant.busy)
    return window.assistant.turns[-1]


def show_slice(window, index: int) -> None:
    window.session.set_main_plane(Plane.AXIAL)
    window.session.set_slice(Plane.AXIAL, index)


def test_find_draws_the_answer_box_on_the_slice(window, taught_model):
    show_slice(window, taught_model.liver_slice)
    window.chat_panel.input.setText("liver")
    window.chat_panel.find_button.click()
    turn = last_turn(window)
    assert turn.state == "done", turn.error
    (box,) = turn.boxes
    assert box.label == "liver" and box.slice_index == taught_model.liver_slice
    assert box.edges_px == pytest.approx(taught_model.liver_box_px, abs=GRID_PX)
    wait_for(lambda: "liver" in window.chat_panel.transcript.toPlainText().lower())
    name = slice_name(window.session.volume, Plane.AXIAL, taught_model.liver_slice)
    assert name.startswith("Im ") and name in window.chat_panel.transcript.toPlainText()

    # The box is on screen, in its colour, where its left edge is.
    view = window.view_layout.main_view
    view.viewport().repaint()
    image = view.viewport().grab().toImage()
    middle_y = (box.y1_px + box.y2_px) / 2
    edge = view.image_to_viewport(box.x1_px, middle_y).toPoint()
    colour = QColor(*box_colour(window.assistant.placed_boxes()[-1].colour))
    near = [image.pixelColor(edge.x() + dx, edge.y()) for dx in (-1, 0, 1)]
    assert any(_close(c, colour) for c in near), [c.name() for c in near]


def test_what_is_this_names_the_drawn_box(window, taught_model):
    show_slice(window, taught_model.liver_slice)
    window.assistant.set_user_box(
        Box("axial", taught_model.liver_slice, *taught_model.liver_box_px, label="drawn")
    )
    wait_for(window.chat_panel.what_button.isEnabled)
    window.chat_panel.what_button.click()
    turn = last_turn(window)
    assert turn.state == "done" and turn.answer.strip() == "Liver"
    assert turn.region is not None and turn.task == "RO"
    wait_for(lambda: "Model: Liver" in window.chat_panel.transcript.toPlainText())


def test_find_in_volume_finds_the_colon_slices(window, taught_model):
    window.chat_panel.input.setText("colon")
    window.chat_panel.sweep_button.click()
    turn = last_turn(window)
    assert turn.state == "done", turn.error
    assert sorted({b.slice_index for b in turn.boxes}) == list(taught_model.colon_slices)
    extent = turn.extent
    assert (extent.first_slice, extent.last_slice) == (
        min(taught_model.colon_slices),
        max(taught_model.colon_slices),
    )
    assert extent.span.startswith("Im ")  # named as the overlay names the slices
    wait_for(lambda: extent.span in window.chat_panel.transcript.toPlainText())
    # Clicking the sweep's "first" link brings that slice.
    window.chat_panel.box_clicked.emit(turn.turn_id, 0)
    assert window.session.slice_index(Plane.AXIAL) == turn.boxes[0].slice_index


def test_a_pasted_120_kb_question_is_refused_at_once_and_kept_to_shorten(window):
    turns = window.assistant.turns
    window.chat_panel.input.setText("Where is the liver? " * 6000)  # 120 KB, a pasted report
    typed = window.chat_panel.input.text()
    started = time.monotonic()
    for button in (window.chat_panel.ask_button, window.chat_panel.sweep_button):
        button.click()
        assert "the limit is 4,000" in window.statusBar().currentMessage()
        window.statusBar().clearMessage()
    assert time.monotonic() - started < 2.0
    assert window.assistant.turns == turns and not window.assistant.busy
    assert window.chat_panel.input.text() == typed  # nothing lost
    window.chat_panel.input.clear()


def test_cancel_stops_a_volume_sweep_and_keeps_what_it_found(window):
    window.chat_panel.input.setText("colon")
    window.chat_panel.sweep_button.click()
    assert window.chat_panel.cancel_button.isEnabled()
    window.chat_panel.cancel_button.click()
    turn = last_turn(window)
    assert turn.state == "cancelled"
    done, total = turn.progress
    assert done < total == 20
    assert f"stopped after {done} of 20 slices" in turn.answer
    assert {b.slice_index for b in turn.boxes} <= set(range(done))
    wait_for(lambda: "stopped after" in window.chat_panel.transcript.toPlainText())


def test_a_killed_worker_shows_an_error_and_the_next_question_works(window, taught_model):
    # A slice nobody asked about yet: the model then gets no earlier turns as history.
    index = taught_model.colon_slices[len(taught_model.colon_slices) // 2]
    show_slice(window, index)
    pid = window.bridge.client.pid
    beats: list[float] = []
    heartbeat = QTimer()
    heartbeat.timeout.connect(lambda: beats.append(time.perf_counter()))
    heartbeat.start(10)
    os.kill(pid, signal.SIGSTOP)  # the question reaches a worker that is then killed
    window.chat_panel.input.setText("colon")
    window.chat_panel.find_button.click()
    os.kill(pid, signal.SIGKILL)
    failed = last_turn(window)
    assert failed.state == "error" and "stopped unexpectedly" in failed.error
    wait_for(lambda: "stopped unexpectedly" in window.chat_panel.transcript.toPlainText())
    wait_for(lambda: window.assistant.model.ready, 120)  # restarted and reloaded by itself
    heartbeat.stop()
    assert window.bridge.client.pid != pid
    gaps = [b - a for a, b in zip(beats, beats[1:], strict=False)]
    assert gaps and max(gaps) < 0.5  # the window kept answering throughout
    # Everything from before is still there.
    assert window.session.volume is not None and len(window.assistant.turns) >= 4
    assert window.assistant.turns[0].boxes  # the first answer's box

    window.chat_panel.input.setText("colon")
    window.chat_panel.find_button.click()
    turn = last_turn(window)
    assert turn.state == "done", turn.error
    (box,) = turn.boxes
    assert box.slice_index == index
    assert box.edges_px == pytest.approx(taught_model.colon_box_px, abs=GRID_PX)


def _close(a: QColor, b: QColor, tolerance: int = 40) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a.getRgb()[:3], b.getRgb()[:3], strict=True))


def test_after_the_worker_gives_up_load_starts_it_again(qapp, taught_model, tmp_path):
    from birdview.inference.client import InferenceClient
    from birdview.ui.main_window import MainWindow

    settings = Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    window = MainWindow(
        settings,
        client_factory=lambda: InferenceClient(max_restarts=0),  # give up at the first crash
        session_dir=str(tmp_path / "sessions"),
        autoload_model=False,
    )
    window.show()
    try:
        window.open_path(str(SAMPLE_CT))
        wait_for(lambda: window.session.volume is not None)
        window.model_panel.model_edit.setText(str(taught_model.model_dir))
        window.model_panel.load()
        wait_for(lambda: window.assistant.model.ready, 120)
        os.kill(window.bridge.client.pid, signal.SIGKILL)
        window.chat_panel.input.setText("liver")
        window.chat_panel.find_button.click()
        assert last_turn(window).state == "error"
        wait_for(lambda: window.assistant.model.state == "error")
        assert "press Load to try again" in window.model_panel.state_label.text()
        assert window.model_panel.load_button.isEnabled()

        window.model_panel.load_button.click()
        wait_for(lambda: window.assistant.model.ready, 120)
        show_slice(window, taught_model.liver_slice)
        window.chat_panel.input.setText("liver")
        window.chat_panel.find_button.click()
        turn = last_turn(window)
        assert turn.state == "done" and turn.boxes
    finally:
        window.close()
