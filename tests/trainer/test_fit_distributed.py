"""The same recipe on two CPU processes (gloo): under ``torchrun --nproc_per_node=2`` (DDP)
and under ``accelerate launch --config_file trainer/launch/fsdp.yaml`` (FSDP2). Each process
takes half of every batch, and the run ends with the weights of one process that accumulates
the two halves."""

from __future__ import annotations

import csv
import socket
import sys

import numpy as np
import pytest
from safetensors.numpy import load_file

from tests.conftest import REPO
from tests.trainer.fit_helpers import build_data, run, short_run, tiny
from trainer.fit.recipe import load_recipe
from trainer.fit.run import fit

STEPS = {"train.max_steps": 2, "eval.max_items": 1, "eval.files": "[test_roc.json]"}


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """Inputs and a one-process run: 2 conversations per micro-batch, 2 accumulated."""
    root = tmp_path_factory.mktemp("distributed")
    train = build_data(root / "data")
    base = tiny("qwen2_vl", root / "base")
    out = root / "single"
    fit(load_recipe("tiny-cpu", short_run(base, train, out, **STEPS)), progress=False)
    return {"root": root, "train": train, "base": base, "out": out}


def fit_args(single, out) -> list[str]:
    overrides = short_run(single["base"], single["train"], out, **STEPS)
    return ["-m", "trainer.cli", "fit", "--no-progress", "--config", "tiny-cpu",
            "--override", *overrides]  # fmt: skip


def assert_same_weights(ours, theirs) -> None:
    ours, theirs = load_file(ours / "model.safetensors"), load_file(theirs / "model.safetensors")
    assert ours.keys() == theirs.keys()
    for name in ours:
        np.testing.assert_allclose(ours[name], theirs[name], atol=2e-5, err_msg=name)


def test_torchrun_ddp_trains_like_one_process(single):
    out = single["root"] / "ddp"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    done = run([*launcher, *fit_args(single, out)], timeout_s=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 per device × 1 accumulated × 2 processes" in done.stderr
    assert_same_weights(out, single["out"])
    rows = list(csv.DictReader(open(out / "logs" / "train.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2]  # one writer: the main process
    assert (out / "logs" / "eval.csv").is_file()  # held-out scoring ran on the main process


def test_accelerate_fsdp_trains_like_one_process(single):
    out = single["root"] / "fsdp"
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launcher = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(REPO / "trainer" / "launch" / "fsdp.yaml"),
        "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", str(port),
    ]  # fmt: skip
    done = run(
        [*launcher, *fit_args(single, out)], timeout_s=120, extra_env={"ACCELERATE_USE_CPU": "true"}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 per device × 1 accumulated × 2 processes" in done.stderr
    assert "held-out evaluation skipped: the model is sharded" in done.stderr
    assert_same_weights(out, single["out"])
