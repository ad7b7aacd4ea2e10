"""Teach a tiny checkpoint known answers (one, or many at once), so tests can check what
comes back."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
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

    from birdview.core import families
    from birdview.core.model_input import pad_to_square
    from birdview.core.prompts import Conversation, to_messages

    torch.manual_seed(0)
    processor = AutoProcessor.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, local_files_only=True)
    family = families.for_model_type(model.config.model_type)
    end = family.chat.end_of_turn
    prompt = processor.apply_chat_template(
        to_messages(Conversation(), question), tokenize=False, add_generation_prompt=True
    )
    image = np.array(image)  # writable: torch warns on read-only arrays
    if family.image.pad_to_square:  # as the engine prepares it
        image = pad_to_square(image)
    full = processor(text=[prompt + answer + end + "\n"], images=[image], return_tensors="pt")
    n_prompt = processor(text=[prompt], images=[image], return_tensors="pt")["input_ids"].shape[1]
    labels = full["input_ids"].clone()
    labels[:, :n_prompt] = -100
    gen_inputs = processor(text=[prompt], images=[image], return_tensors="pt")
    target = processor.tokenizer(answer + end, add_special_tokens=False)["input_ids"]
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


# -- several answers at once ------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One single-turn (image, question, answer) to teach; ``image`` is (rows, cols, 3) uint8."""

    image: np.ndarray
    question: str
    answer: str


@dataclass(frozen=True)
class TeachReport:
    """How `finetune_answers` went: optimiser steps, wall seconds, the last batch's loss and
    the smallest teacher-forced logit margin of a right answer token over the runner-up."""

    steps: int
    seconds: float
    loss: float
    margin: float


def finetune_answers(
    model_dir: Path,
    out_dir: Path,
    examples: Sequence[Example],
    *,
    batch_size: int = 8,
    max_steps: int = 1000,
    lr: float = 5e-4,
    min_margin: float = 1.0,
    check_every: int = 10,
    seed: int = 0,
) -> TeachReport:
    """Train on all ``examples`` together (shuffled batches of ``batch_size``, AdamW at a
    constant ``lr``) until greedy decoding reproduces every answer token-exactly, then save
    model (safetensors) and processor to ``out_dir``.

    Every ``check_every`` steps a teacher-forced pass over all examples looks at each answer
    token (and the closing <|im_end|>): it must be the argmax, ahead of the runner-up by at
    least ``min_margin`` logits, so that the answers survive the small numeric differences of
    another batch make-up or attention kernel at inference. Then generation confirms it, the
    way `birdview.inference.engine.Engine` asks: prompts from the chat template over
    ``to_messages(Conversation(), question)``, batches of ``batch_size`` in order,
    left-padded, greedy ``generate``.

    A tiny random model learns image-dependent answers (the same question, a different answer
    per image) far more reliably at 5e-4 than at 2e-3, where it sits for hundreds of steps
    answering all images alike.

    Raises:
        AssertionError: some answer was not learnt within ``max_steps``.
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    started = time.perf_counter()
    torch.manual_seed(seed)
    processor = AutoProcessor.from_pretrained(model_dir, local_files_only=True)
    processor.tokenizer.padding_side = "left"
    model = AutoModelForImageTextToText.from_pretrained(model_dir, local_files_only=True)
    encoded = [_encode(processor, example) for example in examples]
    pad_id = processor.tokenizer.pad_token_id
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    order: list[int] = []
    loss = torch.tensor(float("nan"))
    model.train()
    for step in range(1, max_steps + 1):
        if len(order) < batch_size:
            order += torch.randperm(len(encoded), generator=generator).tolist()
        batch, order = order[:batch_size], order[batch_size:]
        inputs = _collate([encoded[i] for i in batch], pad_id)
        del inputs["check"]
        loss = model(**inputs).loss
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        if step % check_every:
            continue
        margins = _teacher_forced_margins(model, encoded, pad_id, batch_size)
        wrong = sum(m < min_margin for m in margins)
        logger.info(
            "step %d: loss %.4f, %d of %d answers below margin %.1f (smallest %.2f)",
            step,
            loss.item(),
            wrong,
            len(margins),
            min_margin,
            min(margins),
        )
        if wrong == 0 and not _generation_wrong(model, processor, examples, batch_size):
            model.save_pretrained(out_dir, safe_serialization=True)
            processor.save_pretrained(out_dir)
            seconds = time.perf_counter() - started
            logger.info("learnt %d answers in %d steps, %.1f s", len(examples), step, seconds)
            return TeachReport(step, seconds, float(loss.item()), min(margins))
    raise AssertionError(
        f"the answers were not all learnt in {max_steps} steps (loss {loss.item():.4f})"
    )


def _prompt(processor, question: str) -> str:
    from birdview.core.prompts import Conversation, to_messages

    return processor.apply_chat_template(
        to_messages(Conversation(), question), tokenize=False, add_generation_prompt=True
    )


def _encode(processor, example: Example) -> dict:
    """input_ids, labels (prompt masked), the answer tokens to check, token kinds and image
    tensors of one example, unpadded."""
    import torch

    prompt = _prompt(processor, example.question)
    image = np.array(example.image)  # writable: torch warns on read-only arrays
    full = processor(
        text=[prompt + example.answer + "<|im_end|>\n"], images=[image], return_tensors="pt"
    )
    n_prompt = processor(text=[prompt], images=[image], return_tensors="pt")["input_ids"].shape[1]
    labels = full["input_ids"][0].clone()
    labels[:n_prompt] = -100
    checked = processor.tokenizer(example.answer + "<|im_end|>", add_special_tokens=False)
    n_checked = len(checked["input_ids"])
    check = torch.zeros_like(labels, dtype=torch.bool)
    check[n_prompt : n_prompt + n_checked] = True  # the answer and <|im_end|>, not the "\n"
    return {
        "check": check,
        "input_ids": full["input_ids"][0],
        "labels": labels,
        "mm_token_type_ids": full["mm_token_type_ids"][0],
        "pixel_values": full["pixel_values"],
        "image_grid_thw": full["image_grid_thw"],
    }


def _collate(items: Sequence[dict], pad_id: int) -> dict:
    """A left-padded batch, as the processor pads for batched generation."""
    import torch

    length = max(len(item["input_ids"]) for item in items)
    ids = torch.full((len(items), length), pad_id, dtype=torch.long)
    labels = torch.full((len(items), length), -100, dtype=torch.long)
    mask = torch.zeros((len(items), length), dtype=torch.long)
    kinds = torch.zeros((len(items), length), dtype=torch.long)
    check = torch.zeros((len(items), length), dtype=torch.bool)
    for row, item in enumerate(items):
        n = len(item["input_ids"])
        ids[row, length - n :] = item["input_ids"]
        labels[row, length - n :] = item["labels"]
        mask[row, length - n :] = 1
        kinds[row, length - n :] = item["mm_token_type_ids"]
        check[row, length - n :] = item["check"]
    return {
        "check": check,
        "input_ids": ids,
        "attention_mask": mask,
        "labels": labels,
        "mm_token_type_ids": kinds,
        "pixel_values": torch.cat([item["pixel_values"] for item in items]),
        "image_grid_thw": torch.cat([item["image_grid_thw"] for item in items]),
    }


def _teacher_forced_margins(
    model, encoded: Sequence[dict], pad_id: int, batch_size: int
) -> list[float]:
    """Per example, the smallest logit margin of a checked answer token over the best other
    token, given the true prefix (negative: some token is not the argmax)."""
    import torch

    margins: list[float] = []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(encoded), batch_size):
            batch = _collate(encoded[start : start + batch_size], pad_id)
            labels, check = batch.pop("labels"), batch.pop("check")
            logits = model(**batch).logits[:, :-1].float()
            target, check = labels[:, 1:].clamp(min=0), check[:, 1:]
            right = logits.gather(-1, target[..., None])[..., 0]
            others = logits.scatter(-1, target[..., None], float("-inf")).amax(-1)
            margin = (right - others).masked_fill(~check, float("inf"))
            margins += margin.amin(dim=1).tolist()
    model.train()
    return margins


def _generation_wrong(model, processor, examples: Sequence[Example], batch_size: int) -> int:
    """How many answers greedy generation (batched, left-padded) does not reproduce."""
    import torch

    wrong = 0
    tokenizer = processor.tokenizer
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(examples), batch_size):
            batch = examples[start : start + batch_size]
            inputs = processor(
                text=[_prompt(processor, e.question) for e in batch],
                images=[np.array(e.image) for e in batch],
                return_tensors="pt",
                padding=True,
            )
            targets = [
                tokenizer(e.answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
                for e in batch
            ]
            out = model.generate(
                **inputs,
                max_new_tokens=max(len(t) for t in targets) + 2,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
            new = out[:, inputs["input_ids"].shape[1] :].tolist()
            for row, target in zip(new, targets, strict=True):
                if row[: len(target)] != target:
                    wrong += 1
                    logger.info("not yet: %r", tokenizer.decode(row))
    model.train()
    return wrong
