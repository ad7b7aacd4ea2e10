"""Which executable the worker runs in: this interpreter from a source install, the bundled
``birdview-worker`` runtime from a frozen viewer (which carries no torch), or $BIRDVIEW_WORKER."""

from __future__ import annotations

import sys

import pytest

from birdview.inference._client_process import WORKER_ENV, runtime_executable
from birdview.inference.errors import WorkerCrashedError


@pytest.fixture
def frozen_viewer(tmp_path, monkeypatch):
    """A viewer folder as PyInstaller lays it out, with sys pretending to be frozen in it."""
    viewer = tmp_path / "birdview"
    viewer.mkdir()
    monkeypatch.delenv(WORKER_ENV, raising=False)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(viewer / "birdview"))
    return viewer


def test_a_source_install_uses_this_interpreter(monkeypatch):
    monkeypatch.delenv(WORKER_ENV, raising=False)
    assert runtime_executable() is None


def test_the_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv(WORKER_ENV, str(tmp_path / "python"))
    assert runtime_executable() == str(tmp_path / "python")


@pytest.mark.parametrize("inside", [True, False], ids=["inside the viewer", "beside it"])
def test_a_frozen_viewer_finds_its_runtime(frozen_viewer, inside):
    folder = (frozen_viewer if inside else frozen_viewer.parent) / "birdview-worker"
    folder.mkdir()
    exe = folder / ("birdview-worker.exe" if sys.platform == "win32" else "birdview-worker")
    exe.write_bytes(b"")
    assert runtime_executable() == str(exe)


def test_a_frozen_viewer_without_runtime_says_what_to_install(frozen_viewer):
    with pytest.raises(WorkerCrashedError, match="model runtime .* is not installed"):
        runtime_executable()


def test_without_torch_the_worker_is_not_started_and_the_message_says_what_to_install(
    monkeypatch,
):
    import importlib.util

    from birdview.inference import _client_process

    real = importlib.util.find_spec
    monkeypatch.delenv(WORKER_ENV, raising=False)
    monkeypatch.setattr(
        _client_process.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "torch" else real(name, *a),
    )
    with pytest.raises(WorkerCrashedError, match=r"pip install 'birdview\[inference\]'"):
        _client_process.spawn_worker(start_timeout_s=5)
