"""Engine.ask and Engine.sweep on tiny real models, one of them taught a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from birdview.core import geometry, io
from birdview.core.box import Box
from birdview.core.box_codecs import GRID
from birdview.core.prompts import Conversation, Task, Turn
from birdview.core.volume import Volume
from birdview.inference.engine import Engine, model_size_px
from birdview.inference.loader import load_checkpoint
from tests.conftest import shared
from tests.inference.conftest import FAMILIES, LIVER_PX, QUESTION


@pytest.fixture(scope="module")
def engines(finetuned):
    cache: dict[str, Engine] = {}

    def get(family: str) -> Engine:
        if family not in cache:
            cache[family] = Engine(load_checkpoint(finetuned(family), precision="fp32"))
        return cache[family]

    return get


def _unit_px(engine: Engine, width: int, height: int) -> tuple[float, float]:
    """One step of the family's box numbers, in image pixels."""
    if engine.codec.relative and engine.codec.pad_to_square:
        side = max(width, height)
        return side / GRID, side / GRID
    if engine.codec.relative:
        return width / GRID, height / GRID
    model_w, model_h = model_size_px(engine.processor, width, height, engine.family)
    return width / model_w, height / model_h


@pytest.mark.parametrize("family", FAMILIES)
def test_taught_box_comes_back_in_image_pixels(engines, liver_image, family):
    engine = engines(family)
    height, width = liver_image.shape[:2]

    answer = engine.ask(liver_image, QUESTION, plane="axial", slice_index=0)

    assert not answer.cancelled and not answer.dropped
    assert len(answer.boxes) == 1
    box = answer.boxes[0]
    assert (box.label, box.plane, box.slice_index) == ("liver", geometry.Plane.AXIAL, 0)
    unit_x, unit_y = _unit_px(engine, width, height)
    for got, want, unit in zip(box.edges_px, LIVER_PX, (unit_x, unit_y) * 2, strict=True):
        assert abs(got - want) <= unit, (box.edges_px, LIVER_PX)
    assert not any(token in answer.text for token in engine.family.chat.stop_tokens)
    assert answer.raw == answer.text and answer.reasoning == ""


def test_qwen2_5_vl_answers_in_model_pixels(engines, liver_image):
    engine = engines("qwen2_5_vl")
    height, width = liver_image.shape[:2]

    assert model_size_px(engine.processor, width, height, engine.family) == (252, 168)
    assert '"bbox_2d": [59, 37, 147, 111]' in engine.ask(liver_image, QUESTION).text


def test_streamed_pieces_add_up_to_the_answer(engines, liver_image):
    pieces: list[str] = []

    answer = engines("qwen3_vl").ask(liver_image, QUESTION, on_token=pieces.append)

    assert len(pieces) > 5
    assert "".join(pieces) == answer.text


def test_cancel_stops_generation_early(engines, liver_image):
    engine = engines("qwen3_vl")
    full = engine.ask(liver_image, QUESTION)
    pieces: list[str] = []

    answer = engine.ask(
        liver_image, QUESTION, on_token=pieces.append, cancel=lambda: len(pieces) >= 3
    )

    assert answer.cancelled
    assert answer.n_new_tokens <= 5 < full.n_new_tokens
    assert answer.seconds < full.seconds
    assert not full.cancelled


def test_region_goes_where_the_question_says(engines, liver_image):
    engine = engines("qwen2_vl")
    region = Box("axial", 0, 0, 0, 129, 90.5)

    placed = engine.ask(liver_image, "What is at the {region}?", region=region, max_new_tokens=1)
    appended = engine.ask(liver_image, "What is this?", region=region, max_new_tokens=1)
    by_task = engine.ask(liver_image, "", region=region, task=Task.ROC, max_new_tokens=1)

    box_text = "<|box_start|>(0,0),(500,500)<|box_end|>"
    assert placed.question == f"What is at the {box_text}?"
    assert appended.question == f"What is this? {box_text}"
    assert by_task.question == f"What anatomical structure is present at the {box_text}?"


def test_history_and_task_budget(engines, liver_image):
    engine = engines("qwen3_vl")
    first = engine.ask(liver_image, QUESTION)
    history = Conversation().with_turn(Turn(first.question, first.text, tuple(first.boxes)))

    answer = engine.ask(liver_image, "", task=Task.MIA, history=history, max_new_tokens=4)

    assert answer.question == "What can you interpret from the overall image?"
    assert answer.n_new_tokens <= 4


def test_bad_input(engines, liver_image):
    engine = engines("qwen3_vl")
    with pytest.raises(ValueError, match=r"not \(rows, cols, 3\) uint8 RGB"):
        engine.ask(liver_image[..., 0], QUESTION)
    with pytest.raises(ValueError, match="the question is empty"):
        engine.ask(liver_image, "  ")


# -- sweep ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ct_volume():
    catalog = io.scan(shared("totalseg", "example_ct_sm.nii.gz"))
    return geometry.to_canonical(io.load(catalog.entries[0]))


@pytest.fixture(scope="module")
def random_engine(tiny_checkpoints):
    return Engine(load_checkpoint(tiny_checkpoints["qwen3_vl"], precision="fp32"))


def test_sweep_answers_every_slice_in_order_batched_as_unbatched(random_engine, ct_volume):
    total = geometry.slice_count(ct_volume, "axial")
    seen: list[tuple[int, int]] = []

    batched = random_engine.sweep(
        ct_volume,
        QUESTION,
        "axial",
        batch_size=8,
        max_new_tokens=6,
        progress=lambda *a: seen.append(a),
    )
    single = random_engine.sweep(ct_volume, QUESTION, "axial", batch_size=1, max_new_tokens=6)

    assert [r.slice_index for r in batched] == list(range(total))
    assert [r.text for r in batched] == [r.text for r in single]
    assert seen[-1] == (total, total) and len(seen) == -(-total // 8)


@pytest.mark.parametrize("family", ["qwen3_vl", "gemma3"])
def test_sweep_parses_boxes_onto_each_slice(engines, liver_image, family):
    """Three copies of the taught image as an RGB volume (8-bit RGB passes through
    render_for_model unchanged): every slice gets the taught box, on its own index (Gemma 3:
    through its square padding, two padded slices to a batch)."""
    volume = Volume(voxels=np.stack([liver_image] * 3))
    engine = engines(family)
    unit = max(_unit_px(engine, liver_image.shape[1], liver_image.shape[0]))

    results = engine.sweep(volume, QUESTION, "axial", batch_size=2)

    assert [r.slice_index for r in results] == [0, 1, 2]
    for result in results:
        (box,) = result.boxes
        assert (box.plane, box.slice_index, box.label) == ("axial", result.slice_index, "liver")
        assert np.allclose(box.edges_px, LIVER_PX, atol=unit)


def test_sweep_cancel_between_batches(random_engine, ct_volume):
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 1

    results = random_engine.sweep(
        ct_volume, QUESTION, "axial", batch_size=4, max_new_tokens=2, cancel=cancel
    )

    assert [r.slice_index for r in results] == [0, 1, 2, 3]


def test_left_padding_keeps_batched_answers_equal(random_engine, liver_image):
    small = np.array(liver_image[::2, ::3])
    prompt = random_engine._prompt(Conversation(), QUESTION)

    together, _ = random_engine._generate([prompt] * 2, [liver_image, small], 8, None, None)
    alone = [
        random_engine._generate([prompt], [im], 8, None, None)[0][0] for im in (liver_image, small)
    ]

    assert together == alone


@pytest.fixture(scope="module")
def thinking_engine(tiny_checkpoints, liver_image, tmp_path_factory):
    """A tiny Qwen3-VL taught to think first, R1-style, and box the liver in its answer."""
    from tests.inference.finetune import finetune_one_answer

    engine_family = Engine(load_checkpoint(tiny_checkpoints["qwen3_vl"], precision="fp32"))
    height, width = liver_image.shape[:2]
    truth = Box("axial", 0, *LIVER_PX, label="liver")
    boxes = engine_family.codec.encode([truth], (width, height))
    decoy = '{"bbox_2d": [1, 1, 999, 999]}'
    answer = f"<think>Not {decoy}; the liver.</think><answer>{boxes}</answer>"
    out = tmp_path_factory.mktemp("thinking")
    finetune_one_answer(tiny_checkpoints["qwen3_vl"], out, liver_image, QUESTION, answer)
    return Engine(load_checkpoint(out, precision="fp32"))


def test_a_reasoning_answer_keeps_its_thought_apart(thinking_engine, liver_image):
    pieces: list[str] = []

    answer = thinking_engine.ask(liver_image, QUESTION, on_token=pieces.append, max_new_tokens=400)

    assert answer.reasoning == 'Not {"bbox_2d": [1, 1, 999, 999]}; the liver.'
    assert answer.text.startswith("```json") and "<think>" not in answer.text
    assert answer.raw.startswith("<think>") and "".join(pieces) == answer.raw
    assert [b.label for b in answer.boxes] == ["liver"]  # the decoy in the thought is not read
    assert answer.n_new_tokens > 80


def test_a_model_that_does_not_think_keeps_the_task_budget(tiny_checkpoints, liver_image):
    untaught = Engine(load_checkpoint(tiny_checkpoints["qwen3_vl"], precision="fp32"))

    answer = untaught.ask(liver_image, QUESTION)  # random weights: it never stops by itself

    assert answer.reasoning == "" and answer.n_new_tokens == 80


def test_the_card_beside_a_checkpoint_changes_wording_and_budget(
    tiny_checkpoints, liver_image, tmp_path
):
    import shutil

    from birdview.core.model_card import ModelCard, Overrides, write_card
    from birdview.inference.errors import ModelLoadError

    folder = shutil.copytree(tiny_checkpoints["qwen3_vl"], tmp_path / "carded")
    card = ModelCard(
        "carded",
        overrides=Overrides(prompts={"RO": "Name the organ at {region}."}, max_new_tokens=3),
    )
    write_card(folder, card)
    engine = Engine(load_checkpoint(folder, precision="fp32"))
    region = Box("axial", 0, 0, 0, 129, 90.5)

    answer = engine.ask(liver_image, "", region=region, task=Task.ROC)

    assert engine.loaded.card == card
    assert answer.question == 'Name the organ at {"bbox_2d": [0, 0, 500, 500]}.'
    assert answer.n_new_tokens <= 3

    (folder / "birdview.json").write_text('{"card": {"name": "x", "schema": 7}}')
    with pytest.raises(
        ModelLoadError, match=r"birdview\.json' as card\.schema 7 .*remove the file"
    ):
        load_checkpoint(folder, precision="fp32")


def test_gemma3_writes_a_drawn_region_y_first_on_the_padded_grid(engines, liver_image):
    engine = engines("gemma3")  # the slice is 258 × 181: 38 px of padding above it
    region = Box("axial", 0, 0, 0, 129, 90.5)

    asked = engine.ask(liver_image, "", region=region, task=Task.ROC, max_new_tokens=1)

    box_text = '{"box_2d": [147, 0, 498, 500]}'
    assert asked.question == f"What anatomical structure is present at the {box_text}?"


def test_a_card_without_history_asks_each_question_on_its_own(tiny_checkpoints, tmp_path):
    import shutil

    from birdview.core.model_card import ModelCard, Overrides, write_card

    folder = shutil.copytree(tiny_checkpoints["qwen3_vl"], tmp_path / "single")
    write_card(folder, ModelCard("single", overrides=Overrides(history=False)))
    single = Engine(load_checkpoint(folder, precision="fp32"))
    with_history = Engine(load_checkpoint(tiny_checkpoints["qwen3_vl"], precision="fp32"))
    image = np.zeros((64, 64, 3), np.uint8)
    history = Conversation().with_turn(Turn("Where is the liver?", "Here.", ()))

    alone = single.ask(image, QUESTION, max_new_tokens=4)
    after = single.ask(image, QUESTION, history=history, max_new_tokens=4)
    other = with_history.ask(image, QUESTION, history=history, max_new_tokens=4)

    assert after.raw == alone.raw  # the earlier turn was not sent
    assert other.raw != alone.raw  # it changes what a model that reads history says
