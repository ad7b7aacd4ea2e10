"""The learning proof's changes to a tiny model (docs/LEARNING_PROOF.md): whole-word task
tokens, one token per coordinate with a sine/cosine start, and a sine/cosine start of the
vision position table — checked on a real tiny Qwen3-VL and real phantom files."""

from __future__ import annotations

import re

import pytest
import torch

from experiments.grounding_proof import (
    add_number_tokens,
    add_task_words,
    number_words,
    sincos_positions,
)
from experiments.phantoms import write_phantoms
from trainer.medgrit import box_strings, read_items


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from trainer.tiny import build_tiny

    folder = build_tiny("qwen3_vl", tmp_path_factory.mktemp("proof") / "base", seed=0)
    add_task_words(folder)
    add_number_tokens(folder, 10, amplitude=0.1)
    assert sincos_positions(folder, scale=8.0)
    return folder


def _load(base):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(base, dtype=torch.float32)
    return model, AutoProcessor.from_pretrained(base)


def _numbers(text: str) -> list[int]:
    return [int(v) for v in re.findall(r"\d+", text)]


def test_phantom_naming_questions_on_the_grid_and_grounding_answers_exact(tmp_path):
    write_phantoms(tmp_path, train=4, test=30, seed=2, grid_step=10, question_step=10)
    roc = [i["conversations"][0][0] for i in read_items(tmp_path / "test_roc.json")]
    vg = [i["conversations"][0][1] for i in read_items(tmp_path / "test_vg.json")]
    assert all(v % 10 == 0 for q in roc for v in _numbers(box_strings(q)[0]))
    answers = [v for a in vg for v in _numbers(box_strings(a)[0])]
    assert any(v % 10 for v in answers)  # the truth is not rounded


def test_every_coordinate_the_model_reads_or_writes_is_one_token(base, tmp_path):
    from trainer.fit.dataset import ConversationDataset, read_samples

    data = tmp_path / "data"
    write_phantoms(data, train=6, test=4, seed=3, grid_step=10, question_step=10)
    model, processor = _load(base)
    words = set(number_words(10))
    samples = read_samples(data / "train.json", data) + read_samples(data / "test_roc.json", data)
    dataset = ConversationDataset(samples, processor, "qwen3_vl", max_length=512)
    boxes = 0
    for n in range(len(dataset)):
        ids = dataset[n]["input_ids"]
        pieces = [processor.tokenizer.decode([int(i)]) for i in ids]
        digits = [p for p in pieces if p.strip().isdigit()]
        assert digits and set(digits) <= words, digits
        boxes += len(digits) // 4
    assert boxes >= 10
    with torch.no_grad():  # the grown vocabulary runs
        logits = model(input_ids=torch.tensor([[5, 6, 7]])).logits
    assert logits.shape[-1] == len(processor.tokenizer)


def test_number_rows_start_ordered_and_position_table_distinct(base):
    model, processor = _load(base)
    ids = processor.tokenizer.convert_tokens_to_ids(["100", "600", "610"])
    for table in (model.get_input_embeddings(), model.get_output_embeddings()):
        rows = torch.nn.functional.normalize(table.weight[ids].detach(), dim=1)
        near, far = float(rows[2] @ rows[1]), float(rows[2] @ rows[0])
        assert near > 0.5 and abs(far) < 0.2
    table = model.model.visual.pos_embed.weight.detach()
    assert 3.0 < float(table.std()) < 8.0
    assert float(torch.cdist(table, table).fill_diagonal_(1e9).min()) > 1.0


@pytest.mark.parametrize("threads", ["1", "2"])
def test_training_subprocesses_get_the_thread_count_asked_for(monkeypatch, threads):
    """The proof's fits run as child processes; OMP_NUM_THREADS=2 must reach their torch."""
    import subprocess
    import sys

    from experiments.grounding_proof import _env

    monkeypatch.setenv("OMP_NUM_THREADS", threads)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    child = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
        env=_env(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert child.stdout.strip() == threads
