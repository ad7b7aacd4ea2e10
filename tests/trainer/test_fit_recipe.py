"""Fit recipes: the shipped ones say what BiRD did, overrides are typed, mistakes are named."""

from __future__ import annotations

import pytest

from trainer.fit.recipe import (
    RECIPES_DIR,
    Recipe,
    load_recipe,
    recipe_from_dict,
    recipe_names,
    recipe_to_dict,
    recipe_to_yaml,
)
from trainer.fit.start import accumulation


def test_shipped_recipes():
    assert {"bird-full", "bird-lora", "bird-qlora", "tiny-cpu"} <= set(recipe_names())
    for name in recipe_names():
        assert load_recipe(name).name == name


def test_bird_full_is_birds_recipe(monkeypatch):
    """As ShawnHuang497/BiRD's paddlemix/config/BiRD/sft_argument_stage2.json: mixtoken
    packing into 2048-token sequences, 4 per device, 8 accumulation steps (one process)."""
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    recipe = load_recipe("bird-full")
    model, data, train = recipe.model, recipe.data, recipe.train
    assert (model.method, model.precision) == ("full", "bf16")
    assert (data.pack, data.pack_into, data.max_length) == (True, "sequences", 2048)
    assert (train.per_device_batch, accumulation(recipe)) == (4, 8)
    assert (model.train_vision, model.train_merger, model.train_language) == (False, True, True)
    assert (train.lr, train.schedule, train.warmup, train.weight_decay) == (
        2e-5,
        "cosine",
        0.01,
        0.1,
    )
    assert (train.beta2, train.epochs, train.batch_size, data.max_length) == (0.95, 2.0, 32, 2048)


def test_bird_full_says_what_is_not_birds():
    """Gradient checkpointing is not in BiRD's config; the recipe must not claim it is."""
    text = (RECIPES_DIR / "bird-full.yaml").read_text(encoding="utf-8")
    assert load_recipe("bird-full").model.gradient_checkpointing
    assert "Not BiRD's: gradient checkpointing" in text
    assert "sft_argument_stage2.json" in text and "mixtoken_dataset.py" in text


def test_lora_recipes():
    assert load_recipe("bird-lora").model.method == "lora"
    assert load_recipe("bird-qlora").model.method == "qlora"
    for name in ("bird-lora", "bird-qlora"):
        recipe = load_recipe(name)
        assert (recipe.data.pack, recipe.data.pack_into) == (True, "sequences")
        assert (recipe.train.per_device_batch, recipe.train.batch_size) == (4, 32)
    tiny = load_recipe("tiny-cpu")
    assert (tiny.model.precision, tiny.model.train_vision, tiny.data.pack) == ("fp32", True, True)


def test_overrides_are_read_as_yaml_and_typed():
    recipe = load_recipe(
        "tiny-cpu",
        ["train.lr=1e-4", "train.epochs=3", "data.pack=false", "out=runs/x",
         "eval.files=[a.json, b.json]", "model.base=ckpt/7"],
    )  # fmt: skip
    assert recipe.train.lr == 1e-4 and recipe.train.epochs == 3.0
    assert recipe.data.pack is False and recipe.out == "runs/x"
    assert recipe.eval.files == ("a.json", "b.json") and recipe.model.base == "ckpt/7"


def test_round_trip_through_yaml(tmp_path):
    recipe = load_recipe("bird-lora", ["model.base=/b", "data.train=/t.json", "out=/o"])
    path = tmp_path / "recipe.yaml"
    path.write_text(recipe_to_yaml(recipe), encoding="utf-8")
    assert load_recipe(path) == recipe
    assert recipe_from_dict(recipe_to_dict(recipe)) == recipe


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.learning_rate=1", r"train\.learning_rate is not a key"),
        ("optimiser.lr=1", r"'optimiser\.lr' is not name, out or section\.key"),
        ("train.batch_size=many", r"train\.batch_size is 'many', not an integer"),
        ("data.pack=3", r"data\.pack is 3, not true or false"),
        ("model.method=adapters", r"model\.method 'adapters' is not one of"),
        ("data.pack_into=rows", r"data\.pack_into 'rows' is not one of"),
        ("train.warmup=1.5", r"train\.warmup 1\.5 is not a fraction"),
        ("train.lr", r"'train\.lr' as it is not key=value"),
    ],
)
def test_mistakes_are_named(override, message):
    with pytest.raises(ValueError, match=message):
        load_recipe("tiny-cpu", [override])


def test_unknown_recipe():
    with pytest.raises(FileNotFoundError, match="neither a file nor one of the shipped recipes"):
        load_recipe("bird-huge")


def test_defaults_are_valid():
    assert Recipe().model.method == "full"


def test_freeze_keeps_the_named_parameters_out_of_training(tmp_path):
    from tests.trainer.fit_helpers import tiny
    from trainer.fit.model import load_for_training
    from trainer.fit.recipe import DataConfig

    recipe = load_recipe(
        "tiny-cpu",
        [f"model.base={tiny('qwen3_vl', tmp_path / 'base')}", "model.freeze=[visual.patch_embed]"],
    )
    model, _ = load_for_training(recipe.model, DataConfig())
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all("visual.patch_embed" in name for name in frozen)
    assert any(p.requires_grad for name, p in model.named_parameters() if "visual.blocks" in name)
