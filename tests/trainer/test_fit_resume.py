"""A run killed with SIGKILL mid-way and resumed with ``--resume`` ends where an uninterrupted
run ends: same weights, same loss log (each step once)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
from safetensors.numpy import load_file

from tests.conftest import REPO
from tests.trainer.fit_helpers import build_data, cli, env, short_run, tiny
from trainer.fit.callbacks import ELAPSED_FILE, MetricsLog
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
    seconds = [float(r["seconds"]) for r in rows[0]]
    assert seconds == sorted(seconds)  # the resumed leg goes on from the first one's time


def _leg(out, logs, step):
    """A MetricsLog and the Trainer's arguments and state at a (re)start from ``step``."""
    args = SimpleNamespace(output_dir=str(out))
    state = SimpleNamespace(is_world_process_zero=True, global_step=step, epoch=step / 4)
    return MetricsLog(logs), args, state


def test_elapsed_seconds_go_on_from_the_checkpoint_after_a_resume(tmp_path, monkeypatch):
    clock = iter([100.0, 130.0, 150.0, 1000.0, 1005.0, 2000.0, 2002.0])
    fake_time = SimpleNamespace(perf_counter=lambda: next(clock))
    monkeypatch.setattr("trainer.fit.callbacks.time", fake_time)
    out, logs = tmp_path / "checkpoints", tmp_path / "logs"
    log, args, state = _leg(out, logs, 0)  # started at 100
    log.on_train_begin(args, state, None)
    state.global_step = 2
    log.on_log(args, state, None, logs={"loss": 1.0})  # at 130: 30 s
    (out / "checkpoint-2").mkdir(parents=True)
    log.on_save(args, state, None)  # at 150: 50 s, kept in the checkpoint

    log, args, state = _leg(out, logs, 2)  # resumed, started at 1000
    log.on_train_begin(args, state, None)
    state.global_step = 3
    log.on_log(args, state, None, logs={"loss": 0.5})  # at 1005: 50 + 5 s

    rows = list(csv.DictReader(open(logs / "train.csv")))
    assert [(r["step"], float(r["seconds"])) for r in rows] == [("2", 30.0), ("3", 55.0)]

    (out / "checkpoint-2" / ELAPSED_FILE).unlink()  # killed before it was written
    log, args, state = _leg(out, logs, 2)  # started at 2000: goes on from the last row's 30 s
    log.on_train_begin(args, state, None)
    state.global_step = 3
    log.on_log(args, state, None, logs={"loss": 0.5})  # at 2002
    rows = list(csv.DictReader(open(logs / "train.csv")))
    assert [(r["step"], float(r["seconds"])) for r in rows] == [("2", 30.0), ("3", 32.0)]
