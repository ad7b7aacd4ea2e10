"""Conversations → tokens for the tiny model of each family: labels are exactly the answers,
boxes are in the family's own format, and packing changes no conversation's loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from birdview.core import families
from birdview.inference.engine import model_size_px
from tests.trainer.fit_helpers import build_data, tiny
from trainer.evaluation import box_values, predicted_boxes, reference_boxes
from trainer.fit.collate import IGNORE, PackCollator, PadCollator, pack_rows
from trainer.fit.dataset import (
    ConversationDataset,
    _load_rgb,
    answer_for_family,
    read_samples,
    turns_for_family,
)
from trainer.fit.model import load_for_training, rope_index_of
from trainer.fit.recipe import DataConfig, ModelConfig
from trainer.predict import response_to_medgrit

FAMILIES = families.tiny_families()
PACKABLE = tuple(f for f in FAMILIES if families.get(f).packing.position_function)


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    train = build_data(tmp_path_factory.mktemp("data"))
    return read_samples(train, train.parent)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """family → (model, processor) as fit loads them (tiny-cpu: fp32, all trainable)."""
    root = tmp_path_factory.mktemp("tiny")
    made = {}
    for family in FAMILIES:
        base = tiny(family, root / family)
        config = ModelConfig(
            base=str(base), precision="fp32", train_vision=True, attention="sdpa_varlen"
        )
        made[family] = load_for_training(config, DataConfig())
    return made


def resized_of(processor, family, size):
    return model_size_px(processor, *size, families.get(family))


def family_turns(sample, processor, family):
    image = _load_rgb(sample.image)
    size = (image.shape[1], image.shape[0])
    codec = families.get(family).codec
    return turns_for_family(sample.turns, codec, size, resized_of(processor, family, size))


def label_spans(encoded, tokenizer) -> list[str]:
    """The decoded runs of tokens that carry a label."""
    keep = (encoded["labels"] != IGNORE).tolist()
    ids = encoded["input_ids"].tolist()
    spans, current = [], []
    for token, kept in zip(ids, keep, strict=True):
        if kept:
            current.append(token)
        elif current:
            spans.append(current)
            current = []
    if current:
        spans.append(current)
    return [tokenizer.decode(span, skip_special_tokens=False) for span in spans]


@pytest.mark.parametrize("family", FAMILIES)
def test_labels_are_exactly_the_answers_and_end_of_turn(family, samples, loaded):
    _, processor = loaded[family]
    dataset = ConversationDataset(samples, processor, family, max_length=4096)
    sample = max(samples, key=lambda s: len(s.turns))
    assert len(sample.turns) >= 4
    encoded = dataset[samples.index(sample)]
    end = families.get(family).chat.end_of_turn
    answers = [a for _, a in family_turns(sample, processor, family)]
    assert label_spans(encoded, processor.tokenizer) == [a + end for a in answers]
    assert (encoded["labels"] != IGNORE).sum() < len(encoded["labels"]) / 2


@pytest.mark.parametrize("family", FAMILIES)
def test_answers_carry_boxes_in_the_family_format_and_read_back(family, samples, loaded):
    _, processor = loaded[family]
    codec = families.get(family).codec
    checked = 0
    for sample in samples:
        image = _load_rgb(sample.image)
        size = (image.shape[1], image.shape[0])
        resized = resized_of(processor, family, size)
        for _, answer in sample.turns:
            if "<box>" not in answer:
                continue
            target = answer_for_family(answer, codec, size, resized)
            assert "<box>" not in target
            assert ("<|box_start|>" in target) == (codec.style == "token_tags")
            assert (f'"{codec.json_key}"' in target) == (codec.style == "json")
            back = response_to_medgrit(target, codec, size, resized)
            # the evaluation reads the same boxes back: within one resized pixel for pixel
            # codecs, within half a padded-grid unit (in the image's grid units) for padded ones
            want = [np.array(box_values(b)) for b in reference_boxes(answer)]
            got = [np.array(box_values(b)) for b in predicted_boxes(back)]
            tolerance = _round_trip_tolerance(codec, size, resized)
            assert len(got) == len(want)
            for w, g in zip(want, got, strict=True):
                assert np.abs(w - g).max() <= tolerance
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize(
    ("family", "attention", "rows"),
    [(family, "sdpa_varlen", 1) for family in PACKABLE] + [(PACKABLE[0], "sdpa", 3)],
)
def test_a_packed_batch_gives_each_conversation_its_unpacked_loss(
    family, attention, rows, samples, loaded
):
    """sdpa_varlen: all six in one row, split by position; sdpa: rows of at most 2048 tokens
    (one ends in padding) under transformers' block-diagonal mask."""
    model, processor = loaded[family]
    model.eval()
    model.set_attn_implementation(attention)
    dataset = ConversationDataset(samples, processor, family, max_length=1024)
    items = [dataset[i] for i in range(6)]
    pad_id = processor.tokenizer.pad_token_id
    alone = [_losses(model, PadCollator(pad_id)([item]))[0] for item in items]
    capacity = 6 * 1024 if rows == 1 else 2048
    packed_batch = PackCollator(pad_id, capacity, rope_index_of(model))(items)
    assert packed_batch["input_ids"].shape[0] == rows
    if rows > 1:
        assert (packed_batch["input_ids"] == pad_id).any()
    packed = _losses(model, packed_batch)
    assert sorted(packed) == pytest.approx(sorted(alone), abs=2e-4)
    # The losses lie further apart than the match's tolerance, so the match is meaningful.
    assert np.diff(sorted(alone)).min() > 2e-4
    with torch.no_grad():
        padded_mean = model(**PadCollator(pad_id)(items)).loss.item()
        packed_mean = model(**packed_batch).loss.item()
    assert packed_mean == pytest.approx(padded_mean, abs=2e-4)
    model.set_attn_implementation("sdpa_varlen")


def _round_trip_tolerance(codec, size, resized) -> float:
    if not codec.relative:
        return 1000 / min(resized)
    if codec.pad_to_square:
        return max(size) / min(size)
    return 0


def _losses(model, batch) -> list[float]:
    """Mean label log-loss of each conversation in the batch (segments found from the
    restarting text positions of a packed batch, or one per row)."""
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    losses = []
    for row in range(logits.shape[0]):
        logp = torch.log_softmax(logits[row, :-1].float(), -1)
        target = batch["labels"][row, 1:]
        if "position_ids" in batch:
            segment = (batch["position_ids"][0, row] == 0).long().cumsum(0)[1:]
        else:
            segment = torch.zeros_like(target)
        for s in segment.unique():
            keep = (target != IGNORE) & (segment == s)
            if keep.any():
                losses.append(-logp[keep, target[keep]].mean().item())
    return losses


def test_pack_rows_fill_rows_up_to_capacity():
    rows = pack_rows([700, 250, 768, 300, 20], 1024)
    assert sorted(i for row in rows for i in row) == [0, 1, 2, 3, 4]
    lengths = [700, 250, 768, 300, 20]
    assert all(sum(lengths[i] for i in row) <= 1024 for row in rows)
    assert len(rows) == 2
    assert pack_rows([2000, 10], 1024) == [[0], [1]]


@pytest.mark.parametrize("family", FAMILIES)
def test_long_conversations_lose_whole_last_turns(family, samples, loaded):
    _, processor = loaded[family]
    sample = max(samples, key=lambda s: len(s.turns))
    index = samples.index(sample)
    full = ConversationDataset(samples, processor, family, max_length=4096)[index]
    limit = len(full["input_ids"]) - 40
    dataset = ConversationDataset(samples, processor, family, max_length=limit)
    shortened = dataset[index]
    assert len(shortened["input_ids"]) <= limit and dataset.shortened == 1
    end = families.get(family).chat.end_of_turn
    answers = [a + end for _, a in family_turns(sample, processor, family)]
    spans = label_spans(shortened, processor.tokenizer)
    assert 0 < len(spans) < len(answers) and spans == answers[: len(spans)]
    with pytest.raises(ValueError, match="its first turn alone is .* over data.max_length 30"):
        ConversationDataset(samples, processor, family, max_length=30)[index]


def test_the_image_budget_sets_the_image_tokens(tmp_path, samples):
    base = tiny(PACKABLE[0], tmp_path / "tiny")
    image = _load_rgb(samples[0].image)
    grids = {}
    for max_pixels in (0, 64 * 64):
        _, processor = load_for_training(
            ModelConfig(base=str(base), precision="fp32"), DataConfig(max_pixels=max_pixels)
        )
        grids[max_pixels] = processor.image_processor(images=[image])["image_grid_thw"][0]
    patch = processor.image_processor.patch_size
    assert int(grids[64 * 64].prod()) <= 64 * 64 // patch**2 < int(grids[0].prod())


def test_sdpa_varlen_generates_like_sdpa_for_left_padded_batches(samples, loaded):
    """Generation (the held-out evaluation during training) takes the masked sdpa path."""
    model, processor = loaded[PACKABLE[0]]
    model.eval()
    prompts = [
        processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": q}]}],
            tokenize=False,
            add_generation_prompt=True,
        )
        for q in ("Where is the liver?", "What anatomical structure is present here, please?")
    ]
    images = [_load_rgb(s.image) for s in samples[:2]]
    processor.tokenizer.padding_side = "left"
    batch = processor(text=prompts, images=images, return_tensors="pt", padding=True)
    assert (batch["attention_mask"] == 0).any()  # really padded
    out = {}
    for attention in ("sdpa", "sdpa_varlen"):
        model.set_attn_implementation(attention)
        with torch.no_grad():
            out[attention] = model.generate(**batch, max_new_tokens=6, do_sample=False)
    assert torch.equal(out["sdpa"], out["sdpa_varlen"])


@pytest.mark.parametrize(
    "family", [f for f in FAMILIES if families.get(f).image.pad_to_square] or ["none"]
)
def test_pad_to_square_families_train_on_the_padded_image(family, samples, loaded):
    """The pixels are padded as the app pads them, so they agree with the padded box grid."""
    from birdview.core.model_input import pad_to_square

    if family == "none":
        pytest.skip("no tiny family pads to a square")
    _, processor = loaded[family]
    images = [_load_rgb(s.image) for s in samples]
    index = next(i for i, image in enumerate(images) if image.shape[0] != image.shape[1])
    item = ConversationDataset(samples, processor, family, max_length=4096)[index]

    def pixels(image):
        return processor.image_processor(images=[image], return_tensors="pt")["pixel_values"]

    assert torch.equal(item["pixel_values"], pixels(pad_to_square(images[index])))
    assert not torch.equal(item["pixel_values"], pixels(images[index]))


def test_a_base_card_that_changes_the_conventions_is_trained_in_them(samples, loaded):
    """The fine-tune inherits its base's card, so it must write boxes as the card says."""
    from birdview.core.model_card import BoxConvention, ModelCard, Overrides
    from birdview.core.model_input import pad_to_square

    family = next(f for f in FAMILIES if not families.get(f).image.pad_to_square)
    _, processor = loaded[family]
    box = BoxConvention(style="json", json_key="box_2d", order="yx", relative=True)
    card = ModelCard("base", overrides=Overrides(box=box, pad_to_square=True))
    dataset = ConversationDataset(samples, processor, family, max_length=4096, card=card)
    index = next(i for i, s in enumerate(samples) if any("<box>" in a for _, a in s.turns))
    image = _load_rgb(samples[index].image)

    encoded = dataset[index]

    answers = "".join(label_spans(encoded, processor.tokenizer))
    assert '"box_2d"' in answers and '"bbox_2d"' not in answers
    padded = processor.image_processor(images=[pad_to_square(image)], return_tensors="pt")
    assert torch.equal(encoded["pixel_values"], padded["pixel_values"])
