"""A viewer whose worker was killed (a hang, a crash, closed while busy) exits quietly."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

SCRIPT = """
import os, signal, time
from birdview.inference.client import InferenceClient
from birdview.inference.protocol import WorkerConfig

client = InferenceClient()
client.start()
config = WorkerConfig(model_dir={model!r}, device="cpu", precision="fp32")
print(type(client.load(config).result(timeout_s=120)).__name__, flush=True)
os.kill(client.pid, signal.SIGKILL)
time.sleep(0.5)
client.shutdown()
"""


def test_no_leaked_semaphore_warning_after_a_killed_worker():
    """tqdm's lock in the worker was a multiprocessing semaphore, and a killed worker left it
    to the resource tracker, which warned when the viewer exited."""
    script = SCRIPT.format(model=str(REPO / "resources" / "demo_model"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[0] == "Loaded"
    assert "leaked semaphore" not in done.stderr
    assert "Loading weights" not in done.stderr  # the worker draws no progress bars
