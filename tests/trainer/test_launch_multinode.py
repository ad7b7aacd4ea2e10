"""Several machines: the two-machine accelerate config reads as accelerate reads it (2 machines,
8 processes each, the rank and main address from the command line), and two launchers on this
machine, standing in for two machines, meet through a rendezvous and train like one process:
torchrun's c10d rendezvous (``--nnodes=2``) and accelerate with the two-machine config."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils import DistributedType
from accelerate.utils.launch import prepare_multi_gpu_env

from tests.conftest import REPO
from tests.trainer.fit_helpers import env
from tests.trainer.test_fit_distributed import assert_same_weights, fit_args, single  # noqa: F401

TWO_NODES = REPO / "trainer" / "launch" / "fsdp-2nodes.yaml"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_together(commands: list[list[str]], timeout_s: float, extra_env=None) -> list:
    """Start every command at once (the machines of a launch), wait for all; on a timeout
    every launcher's session is killed and the test fails."""
    processes = [
        subprocess.Popen(
            command,
            cwd=REPO,
            env={**env(), **(extra_env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )  # fmt: skip
        for command in commands
    ]
    try:
        outputs = [p.communicate(timeout=timeout_s) for p in processes]
    except subprocess.TimeoutExpired:
        for p in processes:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
        raise
    return [
        subprocess.CompletedProcess(c, p.returncode, out, err)
        for c, p, (out, err) in zip(commands, processes, outputs, strict=True)
    ]


def test_two_machine_config_reads_as_accelerate_reads_it():
    config = load_config_from_file(str(TWO_NODES))
    assert isinstance(config, ClusterConfig)
    assert config.distributed_type == DistributedType.FSDP
    assert (config.num_machines, config.num_processes, config.machine_rank) == (2, 16, 0)
    assert config.main_process_port == 29500
    assert config.fsdp_config["fsdp_version"] == 2


def test_the_second_machine_gets_its_rank_and_the_main_address_from_the_command_line():
    """What accelerate hands torchrun on machine 1: 2 nodes of 8, node rank 1, and the
    rendezvous at the main machine's address."""
    args = launch_command_parser().parse_args(
        ["--config_file", str(TWO_NODES), "--machine_rank", "1",
         "--main_process_ip", "10.0.0.7", "-m", "trainer.cli", "fit", "--config", "bird-full"]
    )  # fmt: skip
    _validate_launch_command(args)
    environment = prepare_multi_gpu_env(args)
    assert (args.nnodes, args.nproc_per_node, args.node_rank) == ("2", "8", 1)
    assert args.rdzv_endpoint == "10.0.0.7:29500"
    assert environment["ACCELERATE_USE_FSDP"] == "true"
    assert (args.training_script, args.training_script_args) == (
        "trainer.cli",
        ["fit", "--config", "bird-full"],
    )


def test_torchrun_c10d_rendezvous_of_two_nodes_trains_like_one_process(single):  # noqa: F811
    """Two torchrun agents (one process each) meet at a c10d endpoint as two machines would."""
    out = single["root"] / "c10d"
    endpoint = f"127.0.0.1:{free_port()}"
    commands = [
        [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
         "--rdzv-backend=c10d", f"--rdzv-endpoint={endpoint}", "--rdzv-id=birdview-test",
         *fit_args(single, out)]
        for _ in range(2)
    ]  # fmt: skip
    done = run_together(commands, timeout_s=180)
    for launcher in done:
        assert launcher.returncode == 0, launcher.stderr[-3000:]
    assert any("2 per device × 1 accumulated × 2 processes" in d.stderr for d in done)
    assert_same_weights(out, single["out"])


def test_accelerate_two_machine_config_trains_like_one_process(single):  # noqa: F811
    """The two-machine config, two launchers with machine ranks 0 and 1 (one process each on
    the CPU, FSDP2 over gloo)."""
    out = single["root"] / "two-machines"
    port = str(free_port())
    commands = [
        [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(TWO_NODES),
         "--num_processes", "2", "--machine_rank", str(rank), "--main_process_ip", "127.0.0.1",
         "--main_process_port", port, "--mixed_precision", "no", *fit_args(single, out)]
        for rank in (0, 1)
    ]  # fmt: skip
    done = run_together(commands, timeout_s=180, extra_env={"ACCELERATE_USE_CPU": "true"})
    for launcher in done:
        assert launcher.returncode == 0, launcher.stderr[-3000:]
    assert "2 per device × 1 accumulated × 2 processes" in done[0].stderr
    assert_same_weights(out, single["out"])
