"""The same recipe under DeepSpeed ZeRO on two CPU processes: ``train.deepspeed=`` the project's
trainer/launch/zero2.json and zero3.json under ``torchrun --nproc_per_node=2``, and
trainer/launch/zero2.yaml under ``accelerate launch``. Each ends with the weights of the
one-process run of test_fit_distributed.

On CPU DeepSpeed uses gloo (it prefers oneCCL, which is not installed) and compiles two C++ ops
the first time (shared-memory collectives, and the CPU FusedAdam that the configs' "AdamW"
becomes) into ~/.cache/torch_extensions; a fixture compiles them once before the runs. Not
ACCELERATE_USE_CPU=true here: accelerate then drops DeepSpeed without a word and runs DDP."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import sys

import pytest

from tests.conftest import REPO
from tests.trainer import test_fit_distributed as distributed
from tests.trainer.fit_helpers import run
from tests.trainer.test_fit_distributed import assert_same_weights, fit_args

if importlib.util.find_spec("deepspeed") is None:  # not imported here: it takes seconds
    pytest.skip("deepspeed is not installed", allow_module_level=True)
if shutil.which(os.environ.get("CXX", "c++")) is None:
    pytest.skip("DeepSpeed's CPU ops need a C++ compiler", allow_module_level=True)

pytestmark = pytest.mark.timeout(900)  # the first run compiles the ops (minutes on two cores)

LAUNCH = REPO / "trainer" / "launch"
single = distributed.single  # the one-process run (a module fixture: built again here)
ZERO_SHARDS = "checkpoints/checkpoint-2/global_step2/zero_pp_rank_1_mp_rank_00_optim_states.pt"


def ds_env() -> dict[str, str]:
    """DeepSpeed on CPU; the PYTHONPATH the tests run with kept (deepspeed may be found there)."""
    paths = [str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {"DS_ACCELERATOR": "cpu", "PYTHONPATH": os.pathsep.join(paths)}


@pytest.fixture(scope="module")
def ops():
    """DeepSpeed's CPU ops, compiled (or found compiled) once."""
    build = (
        "from deepspeed.accelerator import get_accelerator\n"
        "for name in ('ShareMemCommBuilder', 'FusedAdamBuilder'):\n"
        "    get_accelerator().create_op_builder(name).load()\n"
    )
    done = run([sys.executable, "-c", build], timeout_s=840, extra_env=ds_env())
    assert done.returncode == 0, done.stderr[-3000:]


def torchrun(single, out, config: str):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    args = [*fit_args(single, out), f"train.deepspeed={LAUNCH / config}"]
    return run([*launcher, *args], timeout_s=180, extra_env=ds_env())


def test_torchrun_zero2_trains_like_one_process(single, ops):
    out = single["root"] / "zero2"
    done = torchrun(single, out, "zero2.json")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 per device × 1 accumulated × 2 processes" in done.stderr
    assert (out / ZERO_SHARDS).is_file()  # DeepSpeed's engine, its optimiser state split in two
    assert_same_weights(out, single["out"])
    assert (out / "logs" / "eval.csv").is_file()  # ZeRO-2 keeps whole weights: scoring ran


def test_torchrun_zero3_trains_like_one_process(single, ops):
    out = single["root"] / "zero3"
    done = torchrun(single, out, "zero3.json")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / ZERO_SHARDS).is_file()
    assert "held-out evaluation skipped: the model is sharded" in done.stderr
    assert_same_weights(out, single["out"])  # gathered on save (16-bit weights option)


def accelerate(single, out, **env: str):
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launcher = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(LAUNCH / "zero2.yaml"),
        "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", str(port),
    ]  # fmt: skip
    return run([*launcher, *fit_args(single, out)], timeout_s=180, extra_env={**ds_env(), **env})


def test_accelerate_zero2_trains_like_one_process(single, ops):
    out = single["root"] / "zero2-accelerate"
    done = accelerate(single, out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 per device × 1 accumulated × 2 processes" in done.stderr
    assert (out / ZERO_SHARDS).is_file()
    assert_same_weights(out, single["out"])


def test_accelerate_on_cpu_flag_says_deepspeed_is_off(single, ops):
    out = single["root"] / "zero2-use-cpu"
    done = accelerate(single, out, ACCELERATE_USE_CPU="true")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "configured for DeepSpeed but it is not in use" in done.stderr
    assert not (out / ZERO_SHARDS).is_file()
