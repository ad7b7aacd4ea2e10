"""`go_offline`: the one place the model stack is told to stay off the network."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings

import huggingface_hub.constants
import pytest

from birdview.inference.offline import OFFLINE_ENV, go_offline


def test_sets_the_variables_and_a_hub_already_imported(monkeypatch):
    for name in OFFLINE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)

    go_offline()
    go_offline()  # twice is harmless

    assert all(os.environ[name] == "1" for name in OFFLINE_ENV)
    assert huggingface_hub.constants.HF_HUB_OFFLINE is True
    assert huggingface_hub.constants.is_offline_mode()


def test_drops_only_the_two_lines_whose_advice_does_not_apply(caplog):
    go_offline()
    bnb = logging.getLogger("bitsandbytes.backends.cpu.ops")
    with caplog.at_level(logging.WARNING, logger=bnb.name):
        bnb.warning("Failed to load CPU gemm_4bit_forward from kernels-community: %s.", "x")
        bnb.warning("something else")
    assert [r.getMessage() for r in caplog.records] == ["something else"]


def tiny_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        hidden_size=8,
        intermediate_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        vocab_size=32,
    )
    return LlamaForCausalLM(config)


def test_drops_peft_reading_a_deprecated_transformers_alias():
    go_offline()
    from transformers import PreTrainedModel

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        go_offline()  # inside a fresh filter list, as a command would run it
        model = tiny_model()
        assert getattr(model, "is_gradient_checkpointing", True) is False  # what peft asks
    assert isinstance(model, PreTrainedModel)


def test_deepspeed_on_a_cpu_says_nothing_when_a_model_is_saved(tmp_path):
    """accelerate imports DeepSpeed (when installed) on every save_pretrained; without CUDA it
    used to print "Setting accelerator to CPU" to stdout, from its own handler."""
    pytest.importorskip("deepspeed")
    script = (
        "from birdview.inference.offline import go_offline\n"
        "go_offline()\n"
        "from trainer.tiny import build_tiny\n"
        f"build_tiny('qwen2_vl', {str(tmp_path / 'tiny')!r})\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    env.pop("DS_ACCELERATOR", None)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Setting accelerator" not in done.stdout + done.stderr
    assert "kernels-community" not in done.stdout + done.stderr
