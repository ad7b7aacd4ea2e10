"""The model worker runs below the viewer, so its threads do not take the cores the viewer's UI
thread needs (bench/ui_responsiveness.py); BIRDVIEW_WORKER_NICE=0 keeps it level."""

from __future__ import annotations

import os

import pytest

from birdview.inference._client_process import WORKER_NICE_ENV, spawn_worker, stop_worker

pytestmark = pytest.mark.skipif(not hasattr(os, "getpriority"), reason="POSIX priorities")


@pytest.mark.parametrize(("setting", "lower_by"), [(None, 10), ("0", 0), ("3", 3)])
def test_the_worker_runs_at_a_lower_priority(monkeypatch, setting, lower_by) -> None:
    if setting is None:
        monkeypatch.delenv(WORKER_NICE_ENV, raising=False)
    else:
        monkeypatch.setenv(WORKER_NICE_ENV, setting)
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    worker = spawn_worker(start_timeout_s=120)
    try:
        assert os.getpriority(os.PRIO_PROCESS, worker.pid) == min(19, ours + lower_by)
    finally:
        stop_worker(worker.process, worker.connection, timeout_s=10)
