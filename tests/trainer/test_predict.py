"""`birdview-train predict` on real tiny checkpoints, and predict + evaluate end to end."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter

import numpy as np
import pytest

from birdview.core.box import Box
from birdview.core.box_codecs import CODECS
from tests.conftest import shared
from trainer.cli import main
from trainer.evaluation import evaluate_file, reference_boxes, vg_hits
from trainer.medgrit import write_items
from trainer.predict import predict_with, question_for_family, response_to_medgrit

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

# Demo slices of different sizes (so prompts differ in length), under Med-GRIT names.
NAMES = {
    "s0114_111.png": "ct_00--TotalSeg--s0114--z_0111.png",
    "amos_0507_31.png": "mr_00--AMOS--amos_0507--z_0031.png",
    "amos_0004_75.png": "ct_00--AMOS--amos_0004--z_0075.png",
    "s0619_32.png": "x_ray--Demo--s0619--x_0032.png",
}
QUESTIONS = {
    "VG": ("Where is the liver located?", "<ref>liver</ref><box>(100,200),(500,600)</box>"),
    "RO": ("What anatomical structure is present at the <box>(100,200),(300,400)</box>?", "Liver"),
    "GC": ("Can you describe the content within the <box>(50,60),(700,800)</box>?", "A liver."),
    "MII": ("What can you interpret from the overall image?", "An abdominal CT slice."),
}  # fmt: skip


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    source = shared("sammed2d_demo", "data_demo", "images")
    for original, name in NAMES.items():
        shutil.copy(source / original, folder / name)
    return folder


@pytest.fixture(scope="module")
def test_file(tmp_path_factory):
    """One item per (image, task), unique ids, tasks interleaved (budgets 80 and 100)."""
    items = []
    for image in NAMES.values():
        for task, (question, answer) in QUESTIONS.items():
            conversation = [[f"Picture 1: <img>{image}</img>\n{question}", answer]]
            items.append({"id": f"{image[:-4]}-{task}", "conversations": conversation})
    return write_items(tmp_path_factory.mktemp("data") / "test.json", items)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from birdview.inference.engine import Engine
    from birdview.inference.loader import load_checkpoint
    from trainer.tiny import build_tiny

    folder = build_tiny("qwen2_vl", tmp_path_factory.mktemp("tiny") / "qwen2_vl", seed=1)
    return Engine(load_checkpoint(folder, precision="fp32", device="cpu"))


def read_rows(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def batched_rows(engine, images, test_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("pred") / "pred.jsonl"
    stats = predict_with(engine, test_file, images, out, batch_size=4, progress=False)
    assert (stats.items, stats.skipped, stats.generated) == (16, 0, 16)
    return out


def test_rows_hold_the_first_turn_and_the_answer(batched_rows, test_file):
    rows = read_rows(batched_rows)
    items = json.loads(test_file.read_text(encoding="utf-8"))

    assert [r["id"] for r in rows] == [i["id"] for i in items]
    first = rows[1]
    assert set(first) == {"id", "image", "question", "annotation", "response", "raw_response"}
    assert first["image"] == NAMES["s0114_111.png"]
    assert first["question"] == QUESTIONS["RO"][0]  # without "Picture 1: <img>...</img>"
    assert first["annotation"] == "Liver"
    assert all(isinstance(r["response"], str) and r["raw_response"] for r in rows)


def test_batched_answers_equal_unbatched_ones(engine, batched_rows, images, test_file, tmp_path):
    out = tmp_path / "one_by_one.jsonl"
    predict_with(engine, test_file, images, out, batch_size=1, progress=False)

    assert [r["raw_response"] for r in read_rows(out)] == [
        r["raw_response"] for r in read_rows(batched_rows)
    ]


def test_a_second_run_generates_nothing(engine, batched_rows, images, test_file, tmp_path):
    out = tmp_path / "pred.jsonl"
    shutil.copy(batched_rows, out)
    before = out.read_bytes()

    stats = predict_with(engine, test_file, images, out, batch_size=4, progress=False)

    assert (stats.skipped, stats.generated) == (16, 0)
    assert out.read_bytes() == before


def test_an_interrupted_run_resumes_without_duplicates(
    engine, batched_rows, images, test_file, tmp_path
):
    full = batched_rows.read_text(encoding="utf-8").splitlines(keepends=True)
    out = tmp_path / "pred.jsonl"
    out.write_text("".join(full[:5]) + full[5][:40], encoding="utf-8")  # cut off mid-row

    stats = predict_with(engine, test_file, images, out, batch_size=3, progress=False)

    assert (stats.skipped, stats.generated) == (5, 11)
    rows = read_rows(out)
    assert Counter(r["id"] for r in rows) == Counter(r["id"] for r in read_rows(batched_rows))
    assert rows == read_rows(batched_rows)


def test_a_missing_image_stops_the_run_keeping_earlier_batches(engine, images, tmp_path):
    image = NAMES["s0114_111.png"]
    question, answer = QUESTIONS["VG"]
    items = [
        {"id": "a", "conversations": [[f"<img>{image}</img>\n{question}", answer]]},
        {"id": "b", "conversations": [[f"<img>ct_00--gone.png</img>\n{question}", answer]]},
    ]
    data = write_items(tmp_path / "test.json", items)
    out = tmp_path / "pred.jsonl"

    with pytest.raises(FileNotFoundError, match=r"item 1 \('b'\) as its image 'ct_00--gone.png'"):
        predict_with(engine, data, images, out, batch_size=1, progress=False)
    assert [r["id"] for r in read_rows(out)] == ["a"]


# -- boxes across families ------------------------------------------------------------------

SIZE = (258, 181)  # the CT demo slice
MODEL_SIZE = (252, 168)  # what a Qwen2.5-VL processor might resize it to


@pytest.mark.parametrize(
    ("family", "region"),
    [
        ("medgrit", "<box>(100,200),(300,400)</box>"),
        ("qwen2_vl", "<|box_start|>(100,200),(300,400)<|box_end|>"),
        ("qwen2_5_vl", '{"bbox_2d": [25, 34, 76, 67]}'),
        ("qwen3_vl", '{"bbox_2d": [100, 200, 300, 400]}'),
    ],
)
def test_question_boxes_are_written_in_the_family_format(family, region):
    question = QUESTIONS["RO"][0]

    asked = question_for_family(question, CODECS[family], SIZE, MODEL_SIZE)

    assert asked == f"What anatomical structure is present at the {region}?"


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
def test_family_answers_come_back_as_medgrit_boxes_the_evaluation_reads(family):
    truth = "<ref>liver</ref><box>(233,221),(581,663)</box>"
    liver = Box("axial", 0, 60.0, 40.0, 150.0, 120.0, label="liver")
    answer = "The liver is at " + CODECS[family].encode([liver], SIZE, model_size_px=MODEL_SIZE)

    medgrit = response_to_medgrit(answer, CODECS[family], SIZE, MODEL_SIZE)

    assert reference_boxes(medgrit) and "\n" not in medgrit and "liver" in medgrit
    assert vg_hits(truth, medgrit) == (1, 1)
    assert response_to_medgrit("Liver", CODECS[family], SIZE, MODEL_SIZE) == "Liver"


def test_a_qwen2_vl_answer_drifting_into_json_is_read_too():
    drifted = '```json\n[{"bbox_2d": [233, 221, 581, 663], "label": "liver"}]\n```'

    medgrit = response_to_medgrit(drifted, CODECS["qwen2_vl"], SIZE)

    assert medgrit == "<ref>liver</ref><box>(233,221),(581,663)</box>"


# -- the whole chain ------------------------------------------------------------------------


def test_predict_then_evaluate_a_taught_model_scores_full_recall(images, tmp_path_factory):
    """A tiny Qwen2.5-VL taught to answer "Where is the liver?" with a known box in its own
    format (model pixels, JSON): its answer, written back as Med-GRIT text, hits the box."""
    from PIL import Image

    from tests.inference.conftest import LIVER_PX, QUESTION, _teach
    from trainer.tiny import build_tiny

    family = "qwen2_5_vl"
    image_name = NAMES["s0114_111.png"]
    with Image.open(images / image_name) as image:
        pixels = np.array(image.convert("RGB"))
    base = build_tiny(family, tmp_path_factory.mktemp("base") / family, seed=0)
    taught = _teach(family, base, pixels, tmp_path_factory)
    height, width = pixels.shape[:2]
    truth = CODECS["medgrit"].encode([Box("axial", 0, *LIVER_PX, label="liver")], (width, height))
    item = {
        "id": image_name[:-4],
        "conversations": [[f"Picture 1: <img>{image_name}</img>\n{QUESTION}", f"At {truth}."]],
    }
    folder = tmp_path_factory.mktemp("chain")
    data = write_items(folder / "test_VG.json", [item])
    out = folder / "pred_VG.jsonl"

    paths = [
        "--model",
        str(taught),
        "--data",
        str(data),
        "--images",
        str(images),
        "--out",
        str(out),
    ]
    assert main(["predict", *paths, "--device", "cpu", "--precision", "fp32", "--no-progress"]) == 0

    [row] = read_rows(out)
    assert '"bbox_2d"' in row["raw_response"] and "<box>" in row["response"]
    scores = evaluate_file(out, "vg")
    assert scores.per_modality["ct"] == 1.0 and scores.counts["ct"] == 1
    assert scores.mean == pytest.approx(1 / 8) and scores.mean_present == 1.0
