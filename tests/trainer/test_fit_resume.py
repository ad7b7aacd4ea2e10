"""A run killed with SIGKILL mid-way and resumed with ``--resume`` ends where an uninterrupted
run ends: same weights, same loss log (each step once)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
from safetensors.numpy import load_file

from tests.conftest import REPO
from tests.trainer.fit_helpers import build_data, cli, env, short_run, tiny
from trainer.fit.recipe import load_recipe
from trainer.fit.run import fit

STEPS = {"train.max_steps": 4, "eval.files": "[]"}


def test_killed_and_resumed_run_matches_an_uninterrupted_one(tmp_path):
    train = build_data(tmp_path / "data")
    base = tiny("qwen2_vl", tmp_path / "base")
    whole = tmp_path / "whole"
    fit(load_recipe("tiny-cpu", short_run(base, train, whole, **STEPS)), progress=False)

    broken = tmp_path / "broken"
    args = ["fit", "--no-progress", "--config", "tiny-cpu", "--override",
            *short_run(base, train, broken, **STEPS)]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "trainer.cli", *args],
        cwd=REPO,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    marker = broken / "checkpoints" / "checkpoint-2" / "trainer_state.json"
    deadline = time.monotonic() + 60
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=10) == -signal.SIGKILL
    assert marker.exists() and not (broken / "birdview.json").exists()  # killed mid-run

    done = cli(*args, "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming from" in done.stderr and "checkpoint-" in done.stderr

    ours, theirs = load_file(broken / "model.safetensors"), load_file(whole / "model.safetensors")
    assert ours.keys() == theirs.keys()
    for name in ours:
        np.testing.assert_allclose(ours[name], theirs[name], atol=1e-5, err_msg=name)
    rows = [list(csv.DictReader(open(folder / "logs" / "train.csv"))) for folder in (broken, whole)]
    assert [int(r["step"]) for r in rows[0]] == list(range(1, 5))
    losses = [[float(r["loss"]) for r in log] for log in rows]
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)
