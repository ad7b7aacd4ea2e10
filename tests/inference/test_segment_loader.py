"""Opening segmentation checkpoints: the engine registry, precisions, and folders that must be
refused, with tiny random checkpoints built here (in this process, no worker)."""

from __future__ import annotations

import importlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from birdview.inference.errors import ModelLoadError
from birdview.inference.segmentation import engines
from birdview.inference.segmentation.loader import load_segmenter
from tests.inference.tiny_sam import KINDS, build_tiny_sam

IMAGE = np.random.default_rng(0).integers(0, 256, (181, 258, 3), dtype=np.uint8)
BOX = (60.0, 40.0, 150.0, 120.0)


@pytest.fixture(scope="module")
def tiny_sams(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_sam")
    return {kind: build_tiny_sam(kind, root / kind, seed=1) for kind in KINDS}


def test_every_engine_is_found_by_the_model_type_its_checkpoints_say(tiny_sams):
    for kind, folder in tiny_sams.items():
        model_type = json.loads((folder / "config.json").read_text())["model_type"]
        engine = engines.for_model_type(model_type)
        assert engine is not None and engine.key == kind
        module = importlib.import_module(f"birdview.inference.segmentation.{engine.module}")
        assert module.Engine.video is engine.video
        assert not engine.four_bit and set(engine.precisions) == {"fp32", "bf16"}
    assert engines.for_model_type("qwen2_vl") is None


@pytest.mark.parametrize("kind", KINDS)
def test_bf16_loads_in_bf16_and_still_gives_a_mask_of_the_image_size(tiny_sams, kind):
    import torch

    loaded = load_segmenter(tiny_sams[kind], precision="bf16", device="cpu")
    assert loaded.precision == "bf16" and loaded.device == "cpu" and loaded.key == kind
    dtypes = {p.dtype for p in loaded.engine.model.parameters()}
    assert dtypes == {torch.bfloat16}
    if kind == "sam3":
        found = loaded.engine.segment_text(IMAGE, "liver", 0.0)
    else:
        found = loaded.engine.segment(IMAGE, BOX)
    assert found.mask.shape == (181, 258) and found.mask.dtype == bool
    assert len(loaded.checkpoint_sha256) == 64


def test_auto_is_fp32_on_the_cpu_and_says_so(tiny_sams):
    loaded = load_segmenter(tiny_sams["sam"], device="auto")
    if loaded.device == "cpu":
        assert loaded.precision == "fp32"
        assert "No CUDA device: running on the CPU" in loaded.notices
    else:
        assert loaded.precision == "bf16"


@pytest.mark.parametrize("precision", ["nf4", "int8"])
def test_4_bit_and_8_bit_are_refused_with_the_reason(tiny_sams, precision):
    with pytest.raises(
        ModelLoadError, match=r"in (nf4|int8) as SAM / MedSAM loads in fp32 or bf16 only"
    ):
        load_segmenter(tiny_sams["sam"], precision=precision, device="cpu")
    with pytest.raises(ModelLoadError, match="precision 'fp16' is not one of"):
        load_segmenter(tiny_sams["sam"], precision="fp16", device="cpu")


def test_damaged_and_pickled_checkpoints_are_refused(tiny_sams, tmp_path):
    cut = Path(shutil.copytree(tiny_sams["sam"], tmp_path / "cut"))
    weights = cut / "model.safetensors"
    os.truncate(weights, weights.stat().st_size // 2)
    with pytest.raises(
        ModelLoadError, match=r"'.*cut' as it is damaged: model\.safetensors is cut short"
    ):
        load_segmenter(cut, device="cpu")
    pickled = Path(shutil.copytree(tiny_sams["sam"], tmp_path / "pickled"))
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="pytorch_model.bin"):
        load_segmenter(pickled, device="cpu")


def test_a_config_of_the_wrong_shape_is_refused_naming_the_folder(tiny_sams, tmp_path):
    wrong = Path(shutil.copytree(tiny_sams["sam"], tmp_path / "wrong"))
    config = json.loads((wrong / "config.json").read_text())
    config["vision_config"]["hidden_size"] = 48  # the weights say 32
    (wrong / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        ModelLoadError,
        match=r"Unable to load the segmenter at '.*wrong' as SAM / MedSAM could not read it",
    ):
        load_segmenter(wrong, device="cpu")
