"""One instance, with real processes: a second ``birdview FILE`` hands FILE to the running
window and exits 0 at once; beside a frozen instance it starts a window of its own after a
short timeout; a socket left by a crashed instance does not block the next start."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from birdview.core.resources import resources_dir, sample_ct_dir
from birdview.ui.instance import HAND_OVER_TIMEOUT_S, InstanceServer, server_name
from tests.conftest import REPO
from tests.subseries import load_canonical

MR = resources_dir() / "samples" / "dcm4che_mr"
CT = sample_ct_dir()  # read before the tests point BIRDVIEW_RESOURCES elsewhere

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="Unix sockets in the fakes")


def _series_id(folder: Path) -> str:
    """The hashed series id BirdView logs when it opens ``folder``'s series."""
    return load_canonical(folder).short_id


@pytest.fixture
def env(tmp_path, monkeypatch) -> dict[str, str]:
    """One user's environment, shared by the processes; its own temp folder for sockets."""
    home = tmp_path / "home"
    (tmp_path / "sockets").mkdir()
    (tmp_path / "no_resources").mkdir()  # no demo model: no worker process to start
    values = {
        "QT_QPA_PLATFORM": "offscreen",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "TMPDIR": str(tmp_path / "sockets"),
        "BIRDVIEW_RESOURCES": str(tmp_path / "no_resources"),
        "BIRDVIEW_SESSION_DIR": str(tmp_path / "sessions"),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return dict(os.environ, **values)


def _start(env, state: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "birdview", *args],
        cwd=REPO,
        env=dict(env, XDG_STATE_HOME=str(state)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _log(state: Path) -> str:
    path = state / "birdview" / "log" / "birdview.log"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def _wait_for(state: Path, text: str, process: subprocess.Popen, timeout_s: float = 90) -> None:
    end = time.monotonic() + timeout_s
    while text not in _log(state):
        if process.poll() is not None:
            pytest.fail(f"process ended ({process.returncode}): {process.stderr.read()[-2000:]}")
        if time.monotonic() > end:
            pytest.fail(f"{text!r} not logged in {timeout_s} s:\n{_log(state)[-2000:]}")
        time.sleep(0.2)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_second_start_hands_the_file_to_the_running_window(env, tmp_path) -> None:
    first_state, second_state = tmp_path / "state1", tmp_path / "state2"
    first = _start(env, first_state, str(CT))
    try:
        _wait_for(first_state, f"opening volume {_series_id(CT)}", first)
        started = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-m", "birdview", str(MR)],
            cwd=REPO,
            env=dict(env, XDG_STATE_HOME=str(second_state)),
            capture_output=True,
            text=True,
            timeout=60,
        )
        took_s = time.monotonic() - started
        assert second.returncode == 0, second.stderr[-2000:]
        assert took_s < 20  # an interpreter and PySide6 start, no window, no model
        assert "handed over to the running BirdView window" in _log(second_state)
        assert "main window shown" not in _log(second_state)
        # The first window opens the MR the second start was given.
        _wait_for(first_state, "a later start handed over a study", first, 20)
        _wait_for(first_state, f"opening volume {_series_id(MR)}", first, 60)
    finally:
        _stop(first)


def test_a_frozen_instance_does_not_stop_a_new_window(env, tmp_path) -> None:
    # A listener that accepts connections and never answers: a hung BirdView.
    frozen = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    frozen.bind(str(tmp_path / "sockets" / server_name()))
    frozen.listen(8)
    state = tmp_path / "state"
    started = time.monotonic()
    second = _start(env, state, str(MR))
    try:
        _wait_for(state, "did not answer", second, 60)
        _wait_for(state, "main window shown", second, 60)
        assert time.monotonic() - started >= HAND_OVER_TIMEOUT_S
        _wait_for(state, f"opening volume {_series_id(MR)}", second, 60)
        # It leaves the frozen one's socket alone and runs on its own.
        assert "runs on its own" in _log(state)
        assert (tmp_path / "sockets" / server_name()).exists()
    finally:
        _stop(second)
        frozen.close()


def test_a_socket_left_by_a_crashed_instance_is_taken_over(env, tmp_path, qapp) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "sockets" / server_name()))
    stale.close()  # the file stays, nobody listens: what a crash leaves behind
    server = InstanceServer()
    try:
        assert server.listen()
        assert server.listening
    finally:
        server.close()


def test_the_name_is_per_user_and_settings_folder(env, monkeypatch) -> None:
    mine = server_name()
    assert mine.startswith("birdview-") and mine == server_name()
    monkeypatch.setenv("HOME", "/somewhere/else")
    assert server_name() != mine
