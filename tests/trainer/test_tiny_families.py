"""Tiny models of every family with a recipe: nf4 keeps the vision side whole, and the tiny
Gemma 3 behaves like MedGemma where BirdView depends on it (chat markup, images, thoughts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from birdview.core import families
from tests.conftest import shared
from trainer.tiny import FAMILIES, build_tiny


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """family → its tiny checkpoint, built on first use."""
    built: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in built:
            built[family] = build_tiny(family, tmp_path_factory.mktemp(family), seed=0)
        return built[family]

    return get


@pytest.fixture(scope="module")
def gemma(tiny):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    folder = tiny("gemma3")
    processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True)
    return processor, model


@pytest.mark.parametrize("family", FAMILIES)
def test_nf4_quantises_the_language_model_only(tiny, family):
    """The ``unquantised`` paths keep every vision and projector linear layer out of nf4;
    transformers matches them from the start of a module's name, so a short name would not."""
    bnb = pytest.importorskip("bitsandbytes")
    import torch
    from transformers import AutoModelForImageTextToText, BitsAndBytesConfig

    declared = families.get(family)
    quantisation = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        llm_int8_skip_modules=list(declared.unquantised),
    )
    model = AutoModelForImageTextToText.from_pretrained(
        tiny(family),
        quantization_config=quantisation,
        device_map={"": "cpu"},
        dtype=torch.float32,
        local_files_only=True,
    )

    names = [n for n, m in model.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    vision = [n for n in names if n.startswith(_vision_paths(declared, model))]
    language = [n for n in names if declared.language_model in n]
    assert vision == []
    assert language and len(language) == len(names)


def _vision_paths(declared, model) -> tuple[str, ...]:
    """Full paths of the modules holding the family's vision and projector parameters."""
    parts = declared.vision_parts + declared.projector_parts
    params = [n for n, _ in model.named_parameters() if any(p in n for p in parts)]
    assert params, f"no parameter of {declared.key} matches {parts}"
    return tuple(n.rsplit(".", 1)[0] for n in params)


def test_gemma3_chat_template_renders_gemma_turns(gemma):
    processor, _ = gemma
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "You are a radiologist. "}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": " Where?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Here."}]},
        {"role": "user", "content": "And?"},
    ]

    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    assert text == (
        "<bos><start_of_turn>user\nYou are a radiologist.\n\n<start_of_image>Where?"
        "<end_of_turn>\n<start_of_turn>model\nHere.<end_of_turn>\n"
        "<start_of_turn>user\nAnd?<end_of_turn>\n<start_of_turn>model\n"
    )
    header = families.get("gemma3").chat.assistant_header
    assert text.endswith(header)


def test_gemma3_opens_as_medgemma_does(gemma):
    processor, model = gemma
    tokenizer = processor.tokenizer

    assert type(model).__name__ == "Gemma3ForConditionalGeneration"
    assert type(processor).__name__ == "Gemma3Processor"
    assert tokenizer.convert_tokens_to_ids(["<pad>", "<eos>", "<bos>"]) == [0, 1, 2]
    assert model.config.image_token_id == tokenizer.convert_tokens_to_ids("<image_soft_token>")
    assert model.config.boi_token_id == tokenizer.convert_tokens_to_ids("<start_of_image>")
    assert processor.image_seq_length == model.config.mm_tokens_per_image == 16
    assert processor.image_processor.size == {"height": 64, "width": 64}
    assert list(processor.image_processor.image_mean) == [0.5, 0.5, 0.5]
    modules = dict(model.named_modules())
    assert all(path in modules for path in families.get("gemma3").unquantised)


def test_gemma3_answers_about_a_real_slice(gemma):
    import torch
    from PIL import Image

    processor, model = gemma
    with Image.open(shared("sammed2d_demo", "data_demo", "images", "s0114_111.png")) as image:
        image = image.convert("RGB")
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Liver?"}]}
    ]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    batch = processor(text=[text], images=[image], return_tensors="pt")

    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=4)

    image_tokens = int((batch["input_ids"] == model.config.image_token_id).sum())
    assert image_tokens == model.config.mm_tokens_per_image
    assert int(batch["token_type_ids"].sum()) == image_tokens
    assert out.shape[1] > batch["input_ids"].shape[1]


@pytest.mark.parametrize("marker", ["<unused94>", "<unused95>"])
def test_gemma3_thought_markers_survive_skip_special_tokens(gemma, marker):
    """MedGemma's thinking markers are ordinary tokens: decoding keeps them, so the app can
    find the thought that skip_special_tokens would otherwise leave unmarked."""
    processor, model = gemma
    tokenizer = processor.tokenizer
    ids = tokenizer.encode(f"{marker}thought<end_of_turn>", add_special_tokens=False)

    assert ids[0] == tokenizer.convert_tokens_to_ids(marker) < model.config.text_config.vocab_size
    assert tokenizer.decode(ids, skip_special_tokens=True) == f"{marker}thought"
