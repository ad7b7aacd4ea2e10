"""Teach a tiny checkpoint one grounding answer, so tests can check what comes back."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


def finetune_one_answer(
    model_dir: Path,
    out_dir: Path,
    image: np.ndarray,
    question: str,
    answer: str,
    *,
    max_steps: int = 300,
    lr: float = 2e-3,
) -> int:
    """Train on one (image, question, answer) until greedy decoding reproduces the answer;
    save to ``out_dir`` and return the number of steps taken.

    Raises:
        AssertionError: the answer was not learnt within ``max_steps``.
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from birdview.core.prompts import Conversation, to_messages

    torch.manual_seed(0)
    processor = AutoProcessor.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, local_files_only=True)
    prompt = processor.apply_chat_template(
        to_messages(Conversation(), question), tokenize=False, add_generation_prompt=True
    )
    image = np.array(image)  # writable: torch warns on read-only arrays
    full = processor(text=[prompt + answer + "<|im_end|>\n"], images=[image], return_tensors="pt")
    n_prompt = processor(text=[prompt], images=[image], return_tensors="pt")["input_ids"].shape[1]
    labels = full["input_ids"].clone()
    labels[:, :n_prompt] = -100
    gen_inputs = processor(text=[prompt], images=[image], return_tensors="pt")
    target = processor.tokenizer(answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    for step in range(1, max_steps + 1):
        loss = model(**full, labels=labels).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 10 == 0 and loss.item() < 0.05 and _reproduces(model, gen_inputs, target):
            model.save_pretrained(out_dir, safe_serialization=True)
            processor.save_pretrained(out_dir)
            logger.info("learnt the answer in %d steps (loss %.4f)", step, loss.item())
            return step
    raise AssertionError(f"the answer was not learnt in {max_steps} steps (loss {loss.item()})")


def _reproduces(model, inputs, target: list[int]) -> bool:
    import torch

    model.eval()
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=len(target) + 2, do_sample=False)
    model.train()
    return out[0, inputs["input_ids"].shape[1] :].tolist()[: len(target)] == target
