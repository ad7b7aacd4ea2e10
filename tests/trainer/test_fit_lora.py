"""LoRA and QLoRA fits on a tiny Qwen2.5-VL: the adapter loads in the app on its base, and
``merge`` folds it into a full checkpoint that computes the same as base + adapter."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tests.trainer.fit_helpers import build_data, short_run, tiny
from trainer.cli import main
from trainer.fit.recipe import load_recipe
from trainer.fit.run import fit

LORA = {
    "model.precision": "fp32",  # these CPUs have no fast bf16
    "model.gradient_checkpointing": "false",
    "model.lora_r": 8,
    "model.lora_alpha": 16,
    "data.max_length": 1024,
    "train.max_steps": 3,  # the first step is the warm-up's (lr 0)
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lora")
    train = build_data(root / "data")
    return {"root": root, "train": train, "base": tiny("qwen2_5_vl", root / "base")}


@pytest.fixture(scope="module")
def lora_run(inputs):
    out = inputs["root"] / "lora"
    overrides = short_run(inputs["base"], inputs["train"], out, **LORA)
    fit(load_recipe("bird-lora", overrides), progress=False)
    return out


def image_of(inputs) -> np.ndarray:
    path = next((inputs["train"].parent / "images").iterdir())
    return np.array(Image.open(path).convert("RGB"))


def test_a_lora_run_writes_an_adapter_the_app_loads(inputs, lora_run):
    from birdview.inference.engine import Engine
    from birdview.inference.loader import load_checkpoint

    names = {p.name for p in lora_run.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "birdview.json"} <= names
    assert "model.safetensors" not in names
    meta = json.loads((lora_run / "birdview.json").read_text())
    assert (meta["kind"], meta["family"]) == ("adapter", "qwen2_5_vl")
    loaded = load_checkpoint(inputs["base"], adapter_dir=lora_run, precision="fp32", device="cpu")
    answer = Engine(loaded).ask(image_of(inputs), "Where is the liver?", max_new_tokens=6)
    assert answer.n_new_tokens > 0


def test_merge_computes_what_base_plus_adapter_computes(inputs, lora_run):
    from birdview.inference.loader import load_checkpoint

    merged_dir = inputs["root"] / "merged"
    args = ["merge", "--base", str(inputs["base"]), "--adapter", str(lora_run)]
    assert main([*args, "--out", str(merged_dir)]) == 0
    meta = json.loads((merged_dir / "birdview.json").read_text())
    assert (meta["kind"], meta["family"], meta["recipe"]["name"]) == (
        "merged",
        "qwen2_5_vl",
        "bird-lora",
    )
    assert main([*args, "--out", str(merged_dir)]) == 2  # not empty any more

    with_adapter = load_checkpoint(
        inputs["base"], adapter_dir=lora_run, precision="fp32", device="cpu"
    )
    merged = load_checkpoint(merged_dir, precision="fp32", device="cpu")
    base = load_checkpoint(inputs["base"], precision="fp32", device="cpu")
    processor = merged.processor
    prompt = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Where?"}]}],
        tokenize=False,
        add_generation_prompt=True,
    )
    batch = processor(text=[prompt], images=[image_of(inputs)], return_tensors="pt")
    with torch.no_grad():
        logits = [m.model(**batch).logits for m in (with_adapter, merged, base)]
    assert torch.allclose(logits[0], logits[1], atol=1e-4)
    assert not torch.allclose(logits[0], logits[2], atol=1e-3)  # the adapter did something


def test_a_qlora_run_trains_on_an_nf4_base(inputs):
    from birdview.inference.engine import Engine
    from birdview.inference.loader import load_checkpoint, quantised_module_names

    out = inputs["root"] / "qlora"
    overrides = short_run(inputs["base"], inputs["train"], out, **LORA, **{"eval.files": "[]"})
    result = fit(load_recipe("bird-qlora", overrides), progress=False)
    assert result.steps == 3 and result.loss is not None
    loaded = load_checkpoint(inputs["base"], adapter_dir=out, precision="nf4", device="cpu")
    assert quantised_module_names(loaded.model)
    assert Engine(loaded).ask(image_of(inputs), "Where?", max_new_tokens=4).n_new_tokens > 0
