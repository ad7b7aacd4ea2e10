"""The tiny model factory: a from-scratch checkpoint that opens like a real one."""

from __future__ import annotations

import pytest
from safetensors.torch import load_file

from birdview.core import families
from trainer.cli import main
from trainer.tiny import FAMILIES, TinySpec


def test_every_family_with_a_recipe_is_built():
    assert FAMILIES == families.tiny_families()
    assert {"qwen2_vl", "qwen2_5_vl", "qwen3_vl", "gemma3"} <= set(FAMILIES)


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_checkpoint_opens_like_a_real_one(tmp_path, family):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    recipe = families.get(family).tiny
    assert main(["tiny", "--family", family, "--out", str(tmp_path), "--seed", "3"]) == 0

    processor = AutoProcessor.from_pretrained(tmp_path, local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(tmp_path, local_files_only=True)
    assert model.config.model_type == families.get(family).model_types[0] == family
    assert sum(p.numel() for p in model.parameters()) < 6_000_000
    tokenizer = processor.tokenizer
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in recipe.special_tokens}
    assert len(set(ids.values())) == len(ids)
    assert max(ids.values()) < model.config.text_config.vocab_size
    for name, token in recipe.named_tokens.items():
        assert getattr(tokenizer, name) == token, name
    for token in recipe.special_tokens:
        assert tokenizer.tokenize(f"{token}(12,3)")[0] == token
    _assert_token_ids_match(model, recipe.config(TinySpec(), ids))
    for key, value in recipe.generation(ids).items():
        assert getattr(model.generation_config, key) == value, key
    assert model.generation_config.do_sample is False
    assert not list(tmp_path.glob("*.bin"))


def _assert_token_ids_match(model, config: dict) -> None:
    """Every token id the recipe's config names (image, vision start, begin of image...) is
    the reopened tokenizer's id of that token."""
    named = [k for k in config if k.endswith(("_token_id", "_token_index"))]
    assert named
    for key in named:
        assert getattr(model.config, key) == config[key], key


def test_chat_template_is_chatml_with_the_image_placeholder(tmp_path):
    from transformers import AutoProcessor

    main(["tiny", "--family", "qwen3_vl", "--out", str(tmp_path)])
    processor = AutoProcessor.from_pretrained(tmp_path, local_files_only=True)
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Where?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Here."}]},
        {"role": "user", "content": "And?"},
    ]

    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    assert text == (
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Where?<|im_end|>\n"
        "<|im_start|>assistant\nHere.<|im_end|>\n<|im_start|>user\nAnd?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_same_seed_same_weights(tmp_path):
    main(["tiny", "--family", "qwen2_5_vl", "--out", str(tmp_path / "a"), "--seed", "1"])
    main(["tiny", "--family", "qwen2_5_vl", "--out", str(tmp_path / "b"), "--seed", "1"])
    main(["tiny", "--family", "qwen2_5_vl", "--out", str(tmp_path / "c"), "--seed", "2"])
    a, b, c = (load_file(tmp_path / n / "model.safetensors") for n in "abc")

    assert all((a[k] == b[k]).all() for k in a)
    assert any((a[k] != c[k]).any() for k in a)


def test_unknown_family_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        main(["tiny", "--family", "llava", "--out", str(tmp_path)])


def test_finer_patches_keep_the_same_image_tokens(tmp_path):
    """``patch_size=8, merge_size=4`` at 128 px: four times the patches, each 8 px, merged into
    the same 16 image tokens the default (16 px patches, 2 × 2) gives — what the learning
    proof's ``--patch-size 8 --merge-size 4`` trains."""
    import random

    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from experiments.phantoms import make_phantom
    from trainer.tiny import build_tiny

    image = Image.fromarray(make_phantom(random.Random(4)).image)
    pixels = {"min_pixels": 128 * 128, "max_pixels": 128 * 128}
    grids = {}
    for name, spec in (
        ("default", TinySpec(**pixels)),
        ("fine", TinySpec(patch_size=8, merge_size=4, **pixels)),
    ):
        folder = build_tiny("qwen3_vl", tmp_path / name, spec=spec)
        processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
        model = AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True)
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "?"}]}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True)
        batch = processor(text=[text], images=[image], return_tensors="pt")
        with torch.no_grad():
            logits = model(**batch).logits
        image_tokens = int((batch["input_ids"] == model.config.image_token_id).sum())
        grids[name] = (batch["image_grid_thw"][0].tolist(), image_tokens)
        assert torch.isfinite(logits).all()
        assert model.model.visual.patch_embed.proj.kernel_size[1:] == (spec.patch_size or 16,) * 2

    assert grids["default"] == ([1, 8, 8], 16)
    assert grids["fine"] == ([1, 16, 16], 16)


def test_a_spec_that_does_not_fit_the_family_is_refused(tmp_path):
    from trainer.tiny import build_tiny

    with pytest.raises(ValueError, match="60 px image"):
        build_tiny("gemma3", tmp_path, spec=TinySpec(image_size=60))
