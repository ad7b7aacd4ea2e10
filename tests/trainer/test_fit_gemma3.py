"""Gemma 3 as a fit base (a tiny one): full fine-tuning lowers the loss and leaves a checkpoint
the app loads; LoRA and QLoRA adapters train and load on their base; packing is refused with
the family's reason before anything is written."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from tests.trainer.fit_helpers import build_data, short_run, tiny
from trainer.fit.recipe import load_recipe
from trainer.fit.run import fit

ADAPTERS = {
    "model.precision": "fp32",  # these CPUs have no fast bf16
    "model.gradient_checkpointing": "false",
    "model.lora_r": 8,
    "model.lora_alpha": 16,
    "data.max_length": 1024,
    "data.pack": "false",  # the bird recipes pack; Gemma 3 refuses it (its registry entry)
    "train.max_steps": 3,  # the first step is the warm-up's (lr 0)
    "eval.files": "[]",
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("gemma3")
    train = build_data(root / "data")
    return {"root": root, "train": train, "base": tiny("gemma3", root / "base")}


def image_of(inputs) -> np.ndarray:
    path = next((inputs["train"].parent / "images").iterdir())
    return np.array(Image.open(path).convert("RGB"))


def logged_losses(out) -> list[float]:
    rows = csv.DictReader(open(out / "logs" / "train.csv", encoding="utf-8"))
    return [float(row["loss"]) for row in rows]


def test_packing_is_refused_with_the_family_reason_before_anything_is_written(inputs):
    out = inputs["root"] / "packed"
    packed = short_run(inputs["base"], inputs["train"], out)  # tiny-cpu packs

    with pytest.raises(ValueError, match="token_type_ids.*set data.pack=false"):
        fit(load_recipe("tiny-cpu", packed), progress=False)

    assert not out.exists()


def test_a_full_fit_lowers_the_loss_and_the_app_loads_the_checkpoint(inputs):
    from birdview.inference.engine import Engine
    from birdview.inference.loader import load_checkpoint

    out = inputs["root"] / "full"
    settings = {"data.pack": "false", "train.max_steps": 6}
    overrides = short_run(inputs["base"], inputs["train"], out, **settings)

    result = fit(load_recipe("tiny-cpu", overrides), progress=False)

    losses = logged_losses(out)
    assert result.steps == 6 and len(losses) == 6
    assert losses[-1] < losses[0] - 0.5, losses
    meta = json.loads((out / "birdview.json").read_text())
    assert (meta["kind"], meta["family"], meta["model_type"]) == ("full", "gemma3", "gemma3")
    assert set(meta["metrics"]["eval"]["epoch 1"]) >= {"test_vg", "test_roc"}
    loaded = load_checkpoint(out, precision="fp32", device="cpu")
    assert loaded.family == "gemma3"
    answer = Engine(loaded).ask(image_of(inputs), "Where is the liver?", max_new_tokens=6)
    assert answer.n_new_tokens > 0


@pytest.mark.parametrize(
    ("recipe", "precision"), [("bird-lora", "fp32"), ("bird-qlora", "nf4")], ids=["lora", "qlora"]
)
def test_adapters_train_and_load_on_their_base(inputs, recipe, precision):
    from birdview.inference.engine import Engine
    from birdview.inference.loader import load_checkpoint

    out = inputs["root"] / recipe
    overrides = short_run(inputs["base"], inputs["train"], out, **ADAPTERS)

    result = fit(load_recipe(recipe, overrides), progress=False)

    assert result.steps == 3 and result.loss is not None
    assert logged_losses(out)[-1] < logged_losses(out)[0]
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= names
    assert "model.safetensors" not in names
    loaded = load_checkpoint(inputs["base"], adapter_dir=out, precision=precision, device="cpu")
    assert loaded.family == "gemma3"
    answer = Engine(loaded).ask(image_of(inputs), "Where is the liver?", max_new_tokens=4)
    assert answer.n_new_tokens > 0


def test_qlora_quantises_only_the_language_model_and_adapts_only_it(inputs):
    import bitsandbytes as bnb

    from birdview.core import families
    from trainer.fit.model import load_for_training
    from trainer.fit.recipe import DataConfig, ModelConfig

    config = ModelConfig(
        base=str(inputs["base"]), method="qlora", precision="fp32", gradient_checkpointing=False
    )
    model, _ = load_for_training(config, DataConfig())

    kept = families.get("gemma3").unquantised
    quantised = [n for n, m in model.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert quantised and not [n for n in quantised for p in kept if f"{p}." in f"{n}."]
    adapted = {n.split(".lora_")[0] for n, _ in model.named_parameters() if ".lora_" in n}
    assert adapted and all(".language_model." in n for n in adapted)
