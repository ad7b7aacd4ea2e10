"""A tiny Qwen2-VL-family model trains on ``build-data`` output: a few optimisation steps on a
handful of built multi-turn items lower its loss on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from birdview.core.prompts import Conversation, Turn, to_messages
from tests.conftest import shared
from trainer.data.build import BuildSettings, build_dataset
from trainer.medgrit import image_of, question_text, read_items

ITEMS = 4
STEPS = 12


def encode(processor, out: Path, item: dict) -> dict:
    """The item's conversation as model inputs, the loss on its last answer only."""
    with Image.open(out / image_of(item)) as image:
        pixels = np.array(image.convert("RGB"))
    pairs = [
        (question_text(q) if n == 0 else q, a) for n, (q, a) in enumerate(item["conversations"])
    ]
    history = Conversation(tuple(Turn(q, a) for q, a in pairs[:-1]))
    prompt = processor.apply_chat_template(
        to_messages(history, pairs[-1][0]), tokenize=False, add_generation_prompt=True
    )
    full = processor(
        text=[prompt + pairs[-1][1] + "<|im_end|>\n"], images=[pixels], return_tensors="pt"
    )
    n_prompt = processor(text=[prompt], images=[pixels], return_tensors="pt")["input_ids"].shape[1]
    labels = full["input_ids"].clone()
    labels[:, :n_prompt] = -100
    return {**full, "labels": labels}


def mean_loss(model, batches) -> float:
    import torch

    with torch.no_grad():
        return float(np.mean([model(**batch).loss.item() for batch in batches]))


def test_tiny_model_loss_falls_on_built_items(tmp_path):
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from trainer.tiny import build_tiny

    out = tmp_path / "data"
    sources = [str(shared("sammed2d_demo")), f"{shared('brats_mr')}?labels=1:edema"]
    build_dataset(sources, out, BuildSettings(slice_step=8, test_fraction=0.0), command="test")
    model_dir = build_tiny("qwen2_vl", tmp_path / "tiny", seed=0)
    processor = AutoProcessor.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, local_files_only=True)
    items = [i for i in read_items(out / "train.json") if len(i["conversations"]) > 1][:ITEMS]
    assert len(items) == ITEMS
    batches = [encode(processor, out, item) for item in items]

    torch.manual_seed(0)
    before = mean_loss(model, batches)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    model.train()
    for step in range(STEPS):
        loss = model(**batches[step % ITEMS]).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    after = mean_loss(model, batches)

    assert np.isfinite(before) and after < 0.8 * before
