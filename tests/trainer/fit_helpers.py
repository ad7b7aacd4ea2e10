"""Small real inputs for the fit tests: Med-GRIT data built from the SA-Med2D demo, tiny
checkpoints, the recipe overrides of a short tiny-cpu run, and the CLI in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from birdview.inference.offline import OFFLINE_ENV
from tests.conftest import REPO, shared


def build_data(out: Path) -> Path:
    """``build-data`` on the SA-Med2D demo (11 training items, 4 per test file); the
    training JSON's path."""
    from trainer.data.build import BuildSettings, build_dataset

    build_dataset(
        [str(shared("sammed2d_demo"))], out, BuildSettings(test_fraction=0.3), command="test"
    )
    return out / "train.json"


def tiny(family: str, out: Path) -> Path:
    from trainer.tiny import build_tiny

    return build_tiny(family, out, seed=0)


def tiny_qwen3_5(out: Path) -> Path:
    """A tiny Qwen3.5 (3 linear-attention layers, 1 full-attention layer) with the tokenizer
    and processor of a tiny Qwen3-VL (`trainer.tiny` builds no Qwen3.5)."""
    import json

    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    folder = tiny("qwen3_vl", out)
    old = json.loads((folder / "config.json").read_text())
    text = old["text_config"]
    rope = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3],
            "mrope_interleaved": True, "partial_rotary_factor": 0.25}  # fmt: skip
    config = AutoConfig.for_model(
        "qwen3_5",
        text_config={
            "vocab_size": text["vocab_size"], "hidden_size": 256, "intermediate_size": 512,
            "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2,
            "head_dim": 64, "linear_key_head_dim": 32, "linear_value_head_dim": 32,
            "linear_num_key_heads": 4, "linear_num_value_heads": 4, "rope_parameters": rope,
            "max_position_embeddings": 4096, "eos_token_id": text["eos_token_id"],
            "pad_token_id": text["pad_token_id"],
        },
        vision_config={
            "depth": 2, "hidden_size": 128, "intermediate_size": 256, "num_heads": 4,
            "out_hidden_size": 256, "patch_size": 16, "num_position_embeddings": 256,
        },
        **{k: old[k] for k in ("image_token_id", "video_token_id", "vision_start_token_id",
                               "vision_end_token_id")},
    )  # fmt: skip
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(config)
    model.generation_config.eos_token_id = [text["eos_token_id"], text["pad_token_id"]]
    model.generation_config.pad_token_id = text["pad_token_id"]
    for weights in folder.glob("model*.safetensors"):
        weights.unlink()
    model.save_pretrained(folder)
    return folder


def short_run(base: Path, train: Path, out: Path, **more: object) -> list[str]:
    """Overrides for a few steps of tiny-cpu: 4 conversations per step (2 × 2 accumulated)."""
    settings: dict[str, object] = {
        "model.base": base,
        "data.train": train,
        "out": out,
        "train.max_steps": 4,
        "train.batch_size": 4,
        "train.per_device_batch": 2,
        "train.log_every": 1,
        "train.save_every": 2,
        "eval.max_items": 2,
        **more,
    }
    return [f"{key}={value}" for key, value in settings.items()]


def env() -> dict[str, str]:
    """The environment for subprocesses: offline, one thread, the repo importable."""
    return {
        **os.environ,
        **OFFLINE_ENV,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO),
    }


def cli(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
    """``python -m trainer.cli ARGS`` to completion."""
    return run([sys.executable, "-m", "trainer.cli", *args], timeout_s=timeout_s)


def run(
    command: list[str], *, timeout_s: float, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``command`` to completion in a session of its own; on timeout the whole session
    (a launcher and its workers) is killed and TimeoutExpired raised."""
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env={**env(), **(extra_env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
