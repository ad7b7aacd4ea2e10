"""BiRD's packing (``data.pack_into: sequences``): conversations fill 2048-token sequences in
data order, each still trains alone (no attention across conversations), a run trains on
them, and ``fit --dry-run`` prints bird-full's batch and packing as BiRD's config has it:
4 sequences per device × 8 accumulated, conversations and tokens per step from the data."""

from __future__ import annotations

import logging
import re

import pytest

from tests.trainer.fit_helpers import build_data, cli, short_run, tiny
from tests.trainer.test_fit_collate import _losses
from trainer.fit.collate import PackCollator, PadCollator
from trainer.fit.dataset import ConversationDataset, read_samples
from trainer.fit.model import load_for_training, rope_index_of
from trainer.fit.packing import PackedSequences, SequenceCollator, measure, sequence_packs
from trainer.fit.recipe import DataConfig, ModelConfig, load_recipe
from trainer.fit.run import fit

BIRD_LENGTH = 2048


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("packing")
    train = build_data(root / "data")
    return {"root": root, "train": train, "base": tiny("qwen2_vl", root / "base")}


@pytest.fixture(scope="module")
def loaded(inputs):
    config = ModelConfig(base=str(inputs["base"]), precision="fp32", attention="sdpa_varlen")
    model, processor = load_for_training(config, DataConfig())
    samples = read_samples(inputs["train"], inputs["train"].parent)
    dataset = ConversationDataset(samples, processor, "qwen2_vl", BIRD_LENGTH)
    return model.eval(), processor, dataset


def test_sequences_are_filled_in_data_order_and_closed_when_the_next_does_not_fit():
    assert sequence_packs([700, 900, 500, 1200, 2048, 10, 3000], 2048) == [
        [0, 1],  # 1600; 500 more would be 2100
        [2, 3],
        [4],  # exactly full
        [5],
        [6],  # longer than a sequence: alone
    ]
    assert sequence_packs([], 2048) == []


def test_real_conversations_pack_several_to_a_sequence_each_once(loaded):
    _, _, dataset = loaded
    packed = PackedSequences(dataset, BIRD_LENGTH)
    assert [i for pack in packed.packs for i in pack] == list(range(len(dataset)))
    assert all(sum(packed.lengths[i] for i in pack) <= BIRD_LENGTH for pack in packed.packs)
    assert len(packed) < len(dataset)  # several conversations share a sequence
    assert packed.lengths == [len(dataset[i]["input_ids"]) for i in range(len(dataset))]


def test_loader_processes_measure_the_same_lengths(loaded):
    """train.workers loader processes share the measuring (BiRD's scale: 240k conversations)."""
    _, _, dataset = loaded
    assert measure(dataset, workers=2) == measure(dataset)


@pytest.mark.parametrize("one_row", [False, True])
def test_a_batch_of_sequences_gives_each_conversation_its_unpacked_loss(loaded, one_row):
    """sdpa (block mask): each sequence a row of its own; sdpa_varlen: one row."""
    model, processor, dataset = loaded
    model.set_attn_implementation("sdpa_varlen" if one_row else "sdpa")
    packed = PackedSequences(dataset, BIRD_LENGTH)
    packs = [packed[i] for i in range(3)]
    pad_id = processor.tokenizer.pad_token_id
    collate = SequenceCollator(
        PackCollator(pad_id, BIRD_LENGTH, rope_index_of(model)), one_row=one_row
    )
    batch = collate(packs)
    assert batch["input_ids"].shape[0] == (1 if one_row else 3)
    conversations = [item for pack in packs for item in pack["conversations"]]
    alone = [_losses(model, PadCollator(pad_id)([item]))[0] for item in conversations]
    assert len(conversations) > 3
    assert sorted(_losses(model, batch)) == pytest.approx(sorted(alone), abs=2e-4)
    model.set_attn_implementation("sdpa_varlen")


def test_a_run_trains_on_packed_sequences(inputs, caplog):
    out = inputs["root"] / "run"
    overrides = short_run(
        inputs["base"], inputs["train"], out,
        **{"data.pack_into": "sequences", "data.max_length": BIRD_LENGTH, "train.max_steps": 2,
           "eval.files": "[]"},
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="trainer.fit.run"):
        result = fit(load_recipe("tiny-cpu", overrides), progress=False)
    assert result.steps == 2 and result.loss is not None and result.loss > 0
    text = caplog.text
    assert "2 per device × 2 accumulated × 1 processes, packed into sequences" in text
    assert re.search(r"11 conversations in \d+ sequences", text)


def expected_step(inputs, loaded) -> tuple[float, float]:
    """Conversations and tokens per optimiser step of bird-full on this data, counted here:
    every conversation's token count, and sequences filled in data order up to 2048."""
    _, _, dataset = loaded
    lengths = [len(dataset[i]["input_ids"]) for i in range(len(dataset))]
    sequences, used = 0, BIRD_LENGTH + 1
    for length in lengths:
        if used + length > BIRD_LENGTH:
            sequences, used = sequences + 1, 0
        used += length
    per_sequence = len(lengths) / sequences
    conversations = 4 * 8 * per_sequence
    return conversations, conversations * sum(lengths) / len(lengths)


def test_bird_full_dry_run_prints_birds_batch_and_packing(inputs, loaded):
    out = inputs["root"] / "dry"
    done = cli(
        "fit", "--config", "bird-full", "--dry-run", "--override",
        f"model.base={inputs['base']}", f"data.train={inputs['train']}", f"out={out}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    printed = done.stdout
    assert "4 per device × 8 accumulated × 1 processes" in printed
    assert "packed into sequences of ≤ 2048 tokens (BiRD's mixtoken)" in printed
    assert "effective batch 32 sequences of ≤ 2048 tokens" in printed
    assert "at most 65,536)" in printed  # 32 sequences × 2048 tokens
    conversations, tokens = expected_step(inputs, loaded)
    assert f"≈ {conversations:.0f} conversations per optimiser step" in printed
    assert f"≈ {tokens:,.0f} tokens per step" in printed
    assert not out.exists()  # a dry run writes nothing


def test_dry_run_of_a_family_that_refuses_packing_says_why_and_padding_runs(inputs):
    base = tiny("gemma3", inputs["root"] / "gemma3")
    common = [f"model.base={base}", f"data.train={inputs['train']}", f"out={inputs['root']}/g"]
    refused = cli("fit", "--config", "bird-full", "--dry-run", "--override", *common)
    assert refused.returncode == 2
    lines = [line for line in refused.stderr.splitlines() if "ERROR" in line]
    assert len(lines) == 1 and "Traceback" not in refused.stderr
    assert "Unable to pack conversations as Gemma 3" in lines[0]
    assert "set data.pack=false" in lines[0]
    padded = cli(
        "fit", "--config", "bird-full", "--dry-run", "--override", *common, "data.pack=false"
    )
    assert padded.returncode == 0, padded.stderr[-2000:]
    assert "4 per device × 8 accumulated × 1 processes, padded" in padded.stdout
    assert "effective batch 32 conversations per optimiser step" in padded.stdout
