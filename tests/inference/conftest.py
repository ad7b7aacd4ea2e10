"""Tiny real checkpoints for the inference tests, built once per session, and a network guard.

Nothing here may reach the network: the checkpoints are made locally by the trainer's tiny
model factory, transformers runs offline, and sockets refuse to connect off this machine.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from birdview.core import families
from tests.conftest import shared

FAMILIES = families.tiny_families()
QUESTION = "Where is the liver?"
# A fixed target on the non-square (258 × 181) SA-Med2D demo slice, in image pixels.
LIVER_PX = (60.0, 40.0, 150.0, 120.0)


class NetworkBlocked(RuntimeError):
    pass


def _leaves_the_machine(address) -> bool:
    # Local sockets stay allowed: the session outlives this folder, and later tests talk to a
    # local Orthanc and to multiprocessing's forkserver (a Unix socket).
    if isinstance(address, (str, bytes)):
        return False
    host = str(address[0])
    return host not in ("localhost", "::1") and not host.startswith("127.")


def _guard(original):
    def connect(self, address, *args, **kwargs):
        if _leaves_the_machine(address):
            raise NetworkBlocked(f"a test tried to open a network connection: {address!r}")
        return original(self, address, *args, **kwargs)

    return connect


def _refuse_remote(address, *args, **kwargs):
    if _leaves_the_machine(address):
        raise NetworkBlocked(f"a test tried to open a network connection: {address!r}")
    return _create_connection(address, *args, **kwargs)


_create_connection = socket.create_connection


@pytest.fixture(scope="session", autouse=True)
def no_network():
    """Every connection off this machine fails for the whole session."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _guard(socket.socket.connect))
        mp.setattr(socket.socket, "connect_ex", _guard(socket.socket.connect_ex))
        mp.setattr(socket, "create_connection", _refuse_remote)
        yield


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def liver_image() -> np.ndarray:
    from PIL import Image

    path = shared("sammed2d_demo", "data_demo", "images", "s0114_111.png")
    with Image.open(path) as image:
        return np.array(image.convert("RGB"))


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory, no_network) -> dict[str, Path]:
    """family → a tiny randomly initialised checkpoint folder."""
    from trainer.tiny import build_tiny

    root = tmp_path_factory.mktemp("tiny")
    return {family: build_tiny(family, root / family, seed=0) for family in FAMILIES}


@pytest.fixture(scope="session")
def damaged(tiny_checkpoints, tmp_path_factory) -> dict[str, Path]:
    """Copies of the tiny qwen3_vl checkpoint with real damage: "truncated" (model.safetensors
    cut to half its length, as an interrupted copy leaves it) and "wrong_type" (config.json
    with ``"hidden_size": "big"``)."""
    base = tiny_checkpoints["qwen3_vl"]
    root = tmp_path_factory.mktemp("damaged")
    truncated = Path(shutil.copytree(base, root / "truncated"))
    weights = truncated / "model.safetensors"
    os.truncate(weights, weights.stat().st_size // 2)
    wrong_type = Path(shutil.copytree(base, root / "wrong_type"))
    config = json.loads((wrong_type / "config.json").read_text())
    config["text_config"]["hidden_size"] = "big"
    (wrong_type / "config.json").write_text(json.dumps(config))
    return {"truncated": truncated, "wrong_type": wrong_type}


# What each damage must say (the folder is named before it).
DAMAGE_MESSAGES = {
    "truncated": (
        r"as it is damaged: model\.safetensors is cut short \([\d,]+ of its [\d,]+ bytes\)"
    ),
    "wrong_type": (
        r"as it is damaged: config\.json holds an invalid value "
        r"\(Field 'hidden_size' expected int, got str \(value: 'big'\)\)"
    ),
}


@pytest.fixture(scope="session")
def finetuned(tiny_checkpoints, liver_image, tmp_path_factory):
    """family → a checkpoint taught to answer QUESTION with LIVER_PX in its own format
    (built on first use, then shared)."""
    made: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in made:
            made[family] = _teach(family, tiny_checkpoints[family], liver_image, tmp_path_factory)
        return made[family]

    return get


def _teach(family: str, base: Path, image: np.ndarray, tmp_path_factory) -> Path:
    from transformers import AutoProcessor

    from birdview.core.box import Box
    from birdview.inference.engine import model_size_px
    from tests.inference.finetune import finetune_one_answer

    processor = AutoProcessor.from_pretrained(base, local_files_only=True)
    height, width = image.shape[:2]
    known = families.get(family)
    resized = model_size_px(processor, width, height, known)
    truth = Box("axial", 0, *LIVER_PX, label="liver")
    answer = known.codec.encode([truth], (width, height), model_size_px=resized)
    out = tmp_path_factory.mktemp(f"finetuned_{family}")
    finetune_one_answer(base, out, image, QUESTION, answer)
    return out
