"""``fit`` end to end on a tiny model: the checkpoint, its metadata, logs and held-out scores,
and the app's loader and engine answering with it."""

from __future__ import annotations

import csv
import hashlib
import json

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import load_file

from tests.trainer.fit_helpers import build_data, short_run, tiny
from trainer.cli import main
from trainer.fit.recipe import load_recipe
from trainer.fit.run import fit

MAX_PIXELS = 128 * 128


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished 4-step tiny-cpu run of a tiny Qwen3-VL with a smaller image budget."""
    root = tmp_path_factory.mktemp("fit")
    train = build_data(root / "data")
    base = tiny("qwen3_vl", root / "base")
    overrides = short_run(base, train, root / "out", **{"data.max_pixels": MAX_PIXELS})
    result = fit(load_recipe("tiny-cpu", overrides), progress=False)
    return {"result": result, "base": base, "train": train, "out": root / "out"}


def test_the_checkpoint_and_its_metadata(run):
    out, result = run["out"], run["result"]
    assert result.out == out and result.steps == 4 and result.tokens > 0
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "recipe.yaml", "birdview.json"} <= names
    assert {"tokenizer.json", "chat_template.jinja"} <= names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth"))]  # nothing pickled
    meta = json.loads((out / "birdview.json").read_text())
    assert (meta["kind"], meta["family"], meta["model_type"]) == ("full", "qwen3_vl", "qwen3_vl")
    assert (
        meta["recipe"]["name"] == "tiny-cpu" and meta["recipe"]["data"]["max_pixels"] == MAX_PIXELS
    )
    digest = hashlib.sha256(run["train"].read_bytes()).hexdigest()
    assert meta["data"]["sha256"] == digest and meta["data"]["items"] == 11
    assert meta["data"]["card"]  # build-data's card, carried along
    assert meta["metrics"]["train"]["steps"] == 4
    assert set(meta["metrics"]["eval"]["epoch 1"]) >= {"test_vg", "test_roc"}
    trained = load_file(out / "model.safetensors")
    base = load_file(run["base"] / "model.safetensors")
    assert any(not np.array_equal(trained[k], base[k]) for k in base)


def test_logs_csv_png_and_held_out_scores(run):
    logs = run["out"] / "logs"
    rows = list(csv.DictReader(open(logs / "train.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert all(float(r["loss"]) > 0 and float(r["tokens_per_s"]) > 0 for r in rows)
    assert float(rows[1]["learning_rate"]) > 0
    with Image.open(logs / "loss.png") as image:
        assert image.format == "PNG" and image.size == (800, 420)
        assert (70, 120, 190) in {c for _, c in image.convert("RGB").getcolors(1 << 20)}
    scored = list(csv.DictReader(open(logs / "eval.csv")))
    assert {(r["file"], r["task"]) for r in scored} == {("test_vg", "vg"), ("test_roc", "roc")}
    assert all(int(r["items"]) == 2 for r in scored)
    rows = (run["out"] / "eval" / "epoch-1" / "test_vg.jsonl").read_text().splitlines()
    assert len(rows) == 2 and "response" in json.loads(rows[0])


def test_logs_to_tensorboard(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (folder,) = {p.parent for p in (run["out"] / "logs").rglob("events.out.tfevents.*")}
    events = EventAccumulator(str(folder))
    events.Reload()
    losses = events.Scalars("train/loss")
    assert [e.step for e in losses] == [1, 2, 3, 4] and all(e.value > 0 for e in losses)


def test_the_app_loads_the_checkpoint_and_answers(run):
    from birdview.inference.engine import Engine
    from birdview.inference.loader import load_checkpoint

    loaded = load_checkpoint(run["out"], precision="fp32", device="cpu")
    assert loaded.family == "qwen3_vl"
    assert loaded.processor.image_processor.size["longest_edge"] == MAX_PIXELS
    image = np.array(Image.open(next((run["train"].parent / "images").iterdir())).convert("RGB"))
    answer = Engine(loaded).ask(image, "Where is the liver located in the image?", max_new_tokens=8)
    assert isinstance(answer.text, str) and answer.n_new_tokens > 0


def test_a_used_folder_needs_resume(run, caplog):
    overrides = short_run(run["base"], run["train"], run["out"])
    assert main(["fit", "--config", "tiny-cpu", "--override", *overrides]) == 2
    assert "is not empty; pass --resume" in caplog.text


def test_resume_refuses_another_recipe(run):
    overrides = short_run(run["base"], run["train"], run["out"], **{"train.lr": 0.1})
    with pytest.raises(ValueError, match=r"its recipe differs at data\.max_pixels"):
        fit(load_recipe("tiny-cpu", overrides), resume=True)
