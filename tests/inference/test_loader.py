"""load_checkpoint on tiny real checkpoints: precisions, what stays unquantised, and errors."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import numpy as np
import pytest

from birdview.core import families
from birdview.inference._checkpoint_files import checkpoint_sha256, hashed_files
from birdview.inference.engine import Engine
from birdview.inference.errors import ModelLoadError
from birdview.inference.loader import load_checkpoint, quantised_module_names
from tests.inference.conftest import DAMAGE_MESSAGES, FAMILIES


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("precision", ["fp32", "nf4"])
def test_loads_and_generates_on_the_cpu(tiny_checkpoints, liver_image, family, precision):
    loaded = load_checkpoint(tiny_checkpoints[family], precision=precision, device="cpu")

    assert (loaded.family, loaded.model_type) == (family, family)
    assert (loaded.precision, loaded.device) == (precision, "cpu")
    assert loaded.processor.tokenizer.padding_side == "left"
    answer = Engine(loaded).ask(liver_image, "Where is the liver?", max_new_tokens=3)
    assert 1 <= answer.n_new_tokens <= 3


@pytest.mark.parametrize("family", FAMILIES)
def test_nf4_quantises_the_language_model_only(tiny_checkpoints, family):
    loaded = load_checkpoint(tiny_checkpoints[family], precision="nf4", device="cpu")

    names = quantised_module_names(loaded.model)
    kept = families.get(family).unquantised
    assert any(".language_model." in name for name in names)
    assert not [n for n in names if n.startswith(kept)], kept
    everything = [name for name, _ in loaded.model.named_modules()]
    assert all(any(n.startswith(path) for n in everything) for path in kept)  # paths are real


def test_auto_is_fp32_on_a_machine_without_cuda(tiny_checkpoints):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    loaded = load_checkpoint(tiny_checkpoints["qwen3_vl"])

    assert (loaded.precision, loaded.device) == ("fp32", "cpu")
    assert loaded.notices == ["No CUDA device: running on the CPU"]
    with pytest.raises(ModelLoadError, match="no CUDA device is available"):
        load_checkpoint(tiny_checkpoints["qwen3_vl"], device="cuda")


def test_missing_folder(tmp_path):
    with pytest.raises(ModelLoadError, match=r"Unable to load a model from .* does not exist"):
        load_checkpoint(tmp_path / "nowhere")


def test_folder_without_config(tmp_path):
    with pytest.raises(ModelLoadError, match="it has no config.json"):
        load_checkpoint(tmp_path)


def test_folder_without_weights(tiny_checkpoints, tmp_path):
    shutil.copy(tiny_checkpoints["qwen3_vl"] / "config.json", tmp_path)

    with pytest.raises(ModelLoadError, match=r"it holds no weights \(\*\.safetensors\)"):
        load_checkpoint(tmp_path)


def test_pickled_weights_are_refused(tiny_checkpoints, tmp_path):
    shutil.copy(tiny_checkpoints["qwen3_vl"] / "config.json", tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"not unpickled")

    with pytest.raises(ModelLoadError, match=r"weights are pickled \('pytorch_model.bin'\)"):
        load_checkpoint(tmp_path)


def test_unknown_model_family(tiny_checkpoints, tmp_path):
    shutil.copy(tiny_checkpoints["qwen3_vl"] / "model.safetensors", tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llava"}))

    with pytest.raises(ModelLoadError, match="model_type 'llava' is not a supported model family"):
        load_checkpoint(tmp_path)


def test_unknown_precision(tiny_checkpoints):
    with pytest.raises(ValueError, match="precision 'fp8' is not one of"):
        load_checkpoint(tiny_checkpoints["qwen3_vl"], precision="fp8")


@pytest.fixture(scope="module")
def qwen2_adapter(tiny_checkpoints, tmp_path_factory):
    """A LoRA adapter made for the tiny qwen2_vl base."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    base = tiny_checkpoints["qwen2_vl"]
    model = AutoModelForImageTextToText.from_pretrained(base, local_files_only=True)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    out = tmp_path_factory.mktemp("adapter")
    get_peft_model(model, lora).save_pretrained(out)
    return out


def test_adapter_loads_onto_its_base(tiny_checkpoints, qwen2_adapter, liver_image):
    from peft import PeftModel

    loaded = load_checkpoint(tiny_checkpoints["qwen2_vl"], adapter_dir=qwen2_adapter)

    assert isinstance(loaded.model, PeftModel)
    assert Engine(loaded).ask(liver_image, "Where?", max_new_tokens=2).n_new_tokens >= 1


def test_adapter_for_another_base_is_refused(tiny_checkpoints, qwen2_adapter):
    with pytest.raises(ModelLoadError, match="as it was made for another base model"):
        load_checkpoint(tiny_checkpoints["qwen3_vl"], adapter_dir=qwen2_adapter)


def test_adapter_that_does_not_fit_is_refused(tiny_checkpoints, qwen2_adapter, tmp_path):
    """A base named only by hub id cannot be compared: peft's own error is reported."""
    shutil.copytree(qwen2_adapter, tmp_path, dirs_exist_ok=True)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "someone/another-model"
    config["target_modules"] = ["no_such_module"]
    (tmp_path / "adapter_config.json").write_text(json.dumps(config))

    with pytest.raises(ModelLoadError, match="'someone/another-model'"):
        load_checkpoint(tiny_checkpoints["qwen3_vl"], adapter_dir=tmp_path)


@pytest.mark.parametrize("damage", sorted(DAMAGE_MESSAGES))
def test_a_damaged_checkpoint_is_named_with_its_cause(damaged, damage):
    folder = damaged[damage]
    expected = (
        rf"^Unable to load the checkpoint at '{re.escape(str(folder))}' {DAMAGE_MESSAGES[damage]}"
    )

    with pytest.raises(ModelLoadError, match=expected):
        load_checkpoint(folder, device="cpu")


def test_weights_cut_inside_their_header(tiny_checkpoints, tmp_path):
    shutil.copytree(tiny_checkpoints["qwen3_vl"], tmp_path, dirs_exist_ok=True)
    with open(tmp_path / "model.safetensors", "r+b") as weights:
        weights.truncate(100)

    with pytest.raises(ModelLoadError, match=r"damaged: model\.safetensors is cut short or not a"):
        load_checkpoint(tmp_path, device="cpu")


def test_config_that_is_not_json(tiny_checkpoints, tmp_path):
    shutil.copytree(tiny_checkpoints["qwen3_vl"], tmp_path, dirs_exist_ok=True)
    text = (tmp_path / "config.json").read_text()
    (tmp_path / "config.json").write_text(text[: len(text) // 2])

    with pytest.raises(ModelLoadError, match=r"damaged: config\.json is not valid JSON \("):
        load_checkpoint(tmp_path, device="cpu")


def test_a_damaged_adapter_is_named(tiny_checkpoints, qwen2_adapter, tmp_path):
    shutil.copytree(qwen2_adapter, tmp_path, dirs_exist_ok=True)
    weights = tmp_path / "adapter_model.safetensors"
    with open(weights, "r+b") as file:
        file.truncate(weights.stat().st_size - 10)

    with pytest.raises(
        ModelLoadError, match=rf"^Unable to load the adapter at '{re.escape(str(tmp_path))}' as it"
    ):
        load_checkpoint(tiny_checkpoints["qwen2_vl"], adapter_dir=tmp_path, device="cpu")


def test_checkpoint_sha256_follows_the_content(tiny_checkpoints, tmp_path):
    """Same files elsewhere: same hash. Same shapes, other weights (another seed): another."""
    from trainer.tiny import build_tiny

    base = tiny_checkpoints["qwen3_vl"]
    copy = shutil.copytree(base, tmp_path / "copy")
    reseeded = build_tiny("qwen3_vl", tmp_path / "seed1", seed=1)
    assert (reseeded / "config.json").read_bytes() == (base / "config.json").read_bytes()

    first = load_checkpoint(base, device="cpu").checkpoint_sha256
    assert len(first) == 64 and int(first, 16) >= 0
    assert load_checkpoint(copy, device="cpu").checkpoint_sha256 == first
    assert load_checkpoint(reseeded, device="cpu").checkpoint_sha256 != first
    other_family = load_checkpoint(tiny_checkpoints["qwen2_vl"], device="cpu").checkpoint_sha256
    assert other_family not in ("", first)


def test_checkpoint_sha256_is_over_names_sizes_and_bytes(tiny_checkpoints, qwen2_adapter):
    """The definition, written out, so a record's hash can be checked by anyone."""
    base = tiny_checkpoints["qwen2_vl"]
    expected = hashlib.sha256()
    files = [
        ("config.json", base / "config.json"),
        ("model.safetensors", base / "model.safetensors"),
    ]
    files += [
        ("adapter/adapter_config.json", qwen2_adapter / "adapter_config.json"),
        ("adapter/adapter_model.safetensors", qwen2_adapter / "adapter_model.safetensors"),
    ]
    for name, path in files:
        data = path.read_bytes()
        expected.update(f"{name}\0{len(data)}\0".encode() + data)

    loaded = load_checkpoint(base, adapter_dir=qwen2_adapter, device="cpu")

    assert loaded.checkpoint_sha256 == expected.hexdigest()
    assert checkpoint_sha256(hashed_files(base)) != expected.hexdigest()  # the adapter counts


def test_loading_measures_itself(tiny_checkpoints):
    loaded = load_checkpoint(tiny_checkpoints["qwen2_5_vl"])

    assert 0 < loaded.load_seconds < 30
    assert np.isfinite(loaded.load_seconds)


def test_the_network_is_blocked():
    import socket

    from tests.inference.conftest import NetworkBlocked

    with pytest.raises(NetworkBlocked):
        socket.create_connection(("huggingface.co", 443), timeout=1)


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_gemma3_also_loads_in_bf16_and_int8(tiny_checkpoints, liver_image, precision):
    loaded = load_checkpoint(tiny_checkpoints["gemma3"], precision=precision, device="cpu")

    answer = Engine(loaded).ask(liver_image, "Where is the liver?", max_new_tokens=3)

    assert (loaded.family, loaded.precision) == ("gemma3", precision)
    assert 1 <= answer.n_new_tokens <= 3
    kept = families.get("gemma3").unquantised
    names = quantised_module_names(loaded.model)
    assert bool(names) == (precision == "int8") and not [n for n in names if n.startswith(kept)]
