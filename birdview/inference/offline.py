"""BirdView never downloads: every model comes from a local folder (ARCHITECTURE: "Offline
always"). `go_offline` says so to the Hugging Face stack, once, where the model stack is first
used: the loader, the trainer's commands, the benchmarks and the tests call it.

It also drops three third-party messages that model commands would otherwise print, whose
advice a BirdView user cannot act on:

- bitsandbytes, on a CPU with AVX512-BF16, asks for ``pip install kernels`` so that it can fetch
  a kernel from the hub: offline that can only fail.
- DeepSpeed, imported by accelerate whenever it is installed (the dev extras) as soon as a model
  is saved, warns "Setting accelerator to CPU" on any machine without CUDA, where the CPU is
  what BirdView uses anyway (and says so itself).
- peft, wrapping a model in adapters, reads transformers' deprecated ``is_gradient_checkpointing``
  (a FutureWarning on every LoRA fit, merge and adapter load): between two libraries, fixed
  when peft moves to ``is_activation_checkpointing``.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

__all__ = ["OFFLINE_ENV", "go_offline"]

# For child processes started with their own environment (tests, benchmarks).
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

# logger name → the start of the one message dropped from it
_NOT_FOR_US = {
    "bitsandbytes.backends.cpu.ops": "Failed to load CPU gemm_4bit_forward from kernels-community",
    "DeepSpeed": "Setting accelerator to CPU.",
}


def go_offline() -> None:
    """Keep the Hugging Face stack off the network for the rest of this process (and its
    children). Safe to call more than once, before or after transformers is imported."""
    os.environ.update(OFFLINE_ENV)
    # huggingface_hub reads the variable once, at import: tell a module already loaded too.
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    for name in _NOT_FOR_US:
        logger = logging.getLogger(name)  # the same object the library gets, filters kept
        if _not_for_us not in logger.filters:
            logger.addFilter(_not_for_us)
    warnings.filterwarnings(
        "ignore",
        message="`is_gradient_checkpointing` is deprecated",
        category=FutureWarning,
        module="transformers",
    )


def _not_for_us(record: logging.LogRecord) -> bool:
    prefix = _NOT_FOR_US.get(record.name)
    return prefix is None or not str(record.msg).startswith(prefix)
