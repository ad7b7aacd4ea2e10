"""`birdview-train predict` on real tiny checkpoints, and predict + evaluate end to end."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter

import numpy as np
import pytest

from birdview.core import families
from birdview.core.box import Box
from birdview.core.box_codecs import MEDGRIT
from tests.conftest import shared
from trainer.cli import main
from trainer.evaluation import evaluate_file, reference_boxes, vg_hits
from trainer.medgrit import write_items
from trainer.predict import predict_with, question_for_family, response_to_medgrit

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

    assert [r["id"] for r in rows] == list(range(len(items)))  # BiRD's: the item's position
    assert [r["item_id"] for r in rows] == [i["id"] for i in items]
    first = rows[1]
    keys = {"id", "image", "question", "annotation", "response", "item_id", "raw_response"}
    assert set(first) == keys
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
    assert Counter(r["item_id"] for r in rows) == Counter(
        r["item_id"] for r in read_rows(batched_rows)
    )
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
    assert [r["item_id"] for r in read_rows(out)] == ["a"]


# -- boxes across families ------------------------------------------------------------------

SIZE = (258, 181)  # the CT demo slice
MODEL_SIZE = (252, 168)  # what a Qwen2.5-VL processor might resize it to
# Every family that writes boxes otherwise than Med-GRIT does.
CONVERTED = [f.key for f in families.all_families() if f.codec != MEDGRIT]


def codec_of(family):
    return families.get(family).codec


@pytest.mark.parametrize(
    ("family", "region"),
    [
        ("medgrit", "<box>(100,200),(300,400)</box>"),
        ("qwen2_vl", "<|box_start|>(100,200),(300,400)<|box_end|>"),
        ("qwen2_5_vl", '{"bbox_2d": [25, 34, 76, 67]}'),
        ("qwen3_vl", '{"bbox_2d": [100, 200, 300, 400]}'),
        # y first on the grid of the slice padded to 258 × 258 (38 rows above it)
        ("gemma3", '{"box_2d": [288, 100, 428, 300]}'),
    ],
)
def test_question_boxes_are_written_in_the_family_format(family, region):
    question = QUESTIONS["RO"][0]

    asked = question_for_family(question, codec_of(family), SIZE, MODEL_SIZE)

    assert asked == f"What anatomical structure is present at the {region}?"


@pytest.mark.parametrize("family", CONVERTED)
def test_family_answers_come_back_as_medgrit_boxes_the_evaluation_reads(family):
    truth = "<ref>liver</ref><box>(233,221),(581,663)</box>"
    liver = Box("axial", 0, 60.0, 40.0, 150.0, 120.0, label="liver")
    codec = codec_of(family)
    answer = "The liver is at " + codec.encode([liver], SIZE, model_size_px=MODEL_SIZE)

    medgrit = response_to_medgrit(answer, codec, SIZE, MODEL_SIZE)

    assert reference_boxes(medgrit) and "\n" not in medgrit and "liver" in medgrit
    assert vg_hits(truth, medgrit) == (1, 1)
    assert response_to_medgrit("Liver", codec, SIZE, MODEL_SIZE) == "Liver"


def test_a_qwen2_vl_answer_drifting_into_json_is_read_too():
    drifted = '```json\n[{"bbox_2d": [233, 221, 581, 663], "label": "liver"}]\n```'

    medgrit = response_to_medgrit(drifted, codec_of("qwen2_vl"), SIZE)

    assert medgrit == "<ref>liver</ref><box>(233,221),(581,663)</box>"


# -- the whole chain ------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["qwen2_5_vl", "gemma3"])
def test_predict_then_evaluate_a_taught_model_scores_full_recall(family, images, tmp_path_factory):
    """A tiny model taught to answer "Where is the liver?" with a known box in its family's
    format (Qwen2.5-VL: JSON in model pixels; Gemma 3: y-first JSON on the grid of the slice
    padded to a square): its answers, asked two to a batch and written back as Med-GRIT text,
    hit the box."""
    from PIL import Image

    from tests.inference.conftest import LIVER_PX, QUESTION, _teach
    from trainer.tiny import build_tiny

    image_name = NAMES["s0114_111.png"]
    with Image.open(images / image_name) as image:
        pixels = np.array(image.convert("RGB"))
    base = build_tiny(family, tmp_path_factory.mktemp("base") / family, seed=0)
    taught = _teach(family, base, pixels, tmp_path_factory)
    height, width = pixels.shape[:2]
    truth = MEDGRIT.encode([Box("axial", 0, *LIVER_PX, label="liver")], (width, height))
    question = f"Picture 1: <img>{image_name}</img>\n{QUESTION}"
    items = [{"id": f"liver-{n}", "conversations": [[question, f"At {truth}."]]} for n in (1, 2)]
    folder = tmp_path_factory.mktemp("chain")
    data = write_items(folder / "test_VG.json", items)
    out = folder / "pred_VG.jsonl"

    paths = ["--model", str(taught), "--data", str(data), "--images", str(images)]
    options = ["--out", str(out), "--device", "cpu", "--precision", "fp32", "--no-progress"]
    assert main(["predict", *paths, *options]) == 0

    rows = read_rows(out)
    key = codec_of(family).json_key
    assert all(f'"{key}"' in r["raw_response"] and "<box>" in r["response"] for r in rows)
    scores = evaluate_file(out, "vg")
    assert scores.per_modality["ct"] == 1.0 and scores.counts["ct"] == 2
    assert scores.mean == pytest.approx(1 / 8) and scores.mean_present == 1.0


def test_a_reasoning_answer_is_scored_on_its_answer_alone(images, tmp_path):
    """Boxes the model weighed while thinking are not the answer's: ``response`` is made from
    the answer after the family's thought markers, ``raw_response`` keeps everything."""
    from types import SimpleNamespace

    family = families.get("gemma3")
    image_name = NAMES["s0114_111.png"]
    size = (258, 181)
    liver = Box("axial", 0, 60.0, 40.0, 150.0, 120.0, label="liver")
    spleen = Box("axial", 0, 150.0, 50.0, 200.0, 100.0, label="spleen")
    thought, close = family.chat.thoughts[0]
    text = f"{thought}thought\nNot {family.codec.encode([spleen], size)}{close}"
    text += family.codec.encode([liver], size)
    engine = SimpleNamespace(
        family=family,
        codec=family.codec,
        processor=SimpleNamespace(image_processor=SimpleNamespace(size={"height": 9, "width": 9})),
        answer_batch=lambda pixels, questions, max_new_tokens: [text] * len(pixels),
    )
    question, _ = QUESTIONS["VG"]
    item = {"id": "a", "conversations": [[f"<img>{image_name}</img>\n{question}", "x"]]}
    out = tmp_path / "pred.jsonl"

    predict_with(engine, write_items(tmp_path / "test.json", [item]), images, out, progress=False)

    [row] = read_rows(out)
    assert row["raw_response"] == text
    assert "spleen" not in row["response"] and len(reference_boxes(row["response"])) == 1
    assert vg_hits(MEDGRIT.encode([liver], size), row["response"]) == (1, 1)


# -- BiRD's own evaluation scripts read our files ------------------------------------------
# The authors' scripts (github.com/ShawnHuang497/BiRD, tests/models/BiRD/) read each row's
# "id", "image", "annotation" and "response"; the modality is image.split("_")[0], used as a
# key of a dict of the 8 modalities, and the caption scripts give COCO int(id) as the image
# id. What follows re-implements that lookup and the VG and ROC loops in our own words.

BIRD_MODALITIES = ("ct", "mr", "x", "pet", "endoscopy", "dermoscopy", "fundus", "ultrasound")


def bird_clean(text: str) -> str:
    """regularization.extract_information, restated."""
    if ".<|im_end|>" in text:
        text = text.split(".<|im_end|>")[0] + "."
    text = text.replace("<|im_end|>\n", "")
    match = re.search(r"\n(.*?)\n", text, re.DOTALL)
    if match:
        text = match.group(1)
    return text.replace("<|endoftext|>", "").strip()


def bird_rows(path) -> list[tuple[int, str, str, str]]:
    """(id, modality, annotation, cleaned response) per row, looked up as their scripts do:
    a KeyError when the modality is not one of their dict's keys, a ValueError when the id
    is not an integer."""
    tally = {m: 0 for m in BIRD_MODALITIES}
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        modality = item["image"].split("_")[0]
        tally[modality] += 0  # their modality_dict[modality]: KeyError for "images/ct"
        rows.append((int(item["id"]), modality, item["annotation"], bird_clean(item["response"])))
    return rows


def bird_vg(rows) -> dict[str, float]:
    """eval_VG_score_modality.py's recall per modality and mean, restated."""
    found = {m: [0, 0] for m in BIRD_MODALITIES}
    for _, modality, annotation, response in rows:
        targets = re.findall(r"<box>(.*?)</box>", annotation)
        guesses = re.findall(r"<box>(.*?)</box>", response) or re.findall(
            r"\(\d+,\d+\),\(\d+,\d+\)", response
        )
        if not targets:
            continue
        for target in targets:
            for guess in guesses:
                try:
                    t, g = ([float(v) for v in b.replace("(", "").replace(")", "").split(",")]
                            for b in (target, guess))  # fmt: skip
                    w = max(0.0, min(t[2], g[2]) - max(t[0], g[0]))
                    h = max(0.0, min(t[3], g[3]) - max(t[1], g[1]))
                    area = (t[2] - t[0]) * (t[3] - t[1]) + (g[2] - g[0]) * (g[3] - g[1])
                    value = w * h / (area - w * h)
                except (ValueError, IndexError, ZeroDivisionError):
                    value = 0.0
                if value > 0.5:
                    found[modality][0] += 1
                    break
        found[modality][1] += len(targets)
    scores = {m: hit / (total + 1e-8) for m, (hit, total) in found.items()}
    return {**scores, "mean": sum(scores.values()) / len(scores)}


def bird_roc(rows) -> dict[str, float]:
    """eval_RO_score_modality.py's accuracy per modality and mean, restated."""
    found = {m: [0, 0] for m in BIRD_MODALITIES}
    for _, modality, annotation, response in rows:
        pieces = annotation.lower().split(" ")
        found[modality][0] += all(p in response.lower() for p in pieces)
        found[modality][1] += 1
    scores = {m: hit / (total + 1e-8) for m, (hit, total) in found.items()}
    return {**scores, "mean": sum(scores.values()) / len(scores)}


@pytest.mark.parametrize(("task", "bird_score"), [("VG", bird_vg), ("RO", bird_roc)])
def test_bird_scripts_read_our_predictions_and_agree_with_evaluate(
    task, bird_score, images, tmp_path, capsys
):
    """Items whose <img> has a folder in front (as Med-GRIT's test files may), answered by an
    engine that says the reference for half of them: BiRD's lookup reads the file (ids are
    distinct integers, images map to their modalities) and its numbers equal
    `birdview-train evaluate`'s."""
    from types import SimpleNamespace

    question, answer = QUESTIONS[task]
    items = []
    for n, name in enumerate(NAMES.values()):
        for copy in range(2):
            reply = answer if (n + copy) % 2 == 0 else "<box>(1,1),(2,2)</box> spleen"
            conversation = [[f"Picture 1: <img>images/{name}</img>\n{question}", answer]]
            items.append(({"id": name[:-4], "conversations": conversation}, reply))
    replies = iter(reply for _, reply in items)
    family = families.get("gemma3")
    engine = SimpleNamespace(
        family=family,
        codec=MEDGRIT,  # answers already in Med-GRIT text
        processor=SimpleNamespace(image_processor=SimpleNamespace(size={"height": 9, "width": 9})),
        answer_batch=lambda pixels, questions, max_new_tokens: [next(replies) for _ in pixels],
    )
    folder = tmp_path / "data"
    (folder / "images").mkdir(parents=True)
    for name in NAMES.values():
        shutil.copy(images / name, folder / "images" / name)
    data = write_items(folder / f"test_{task}.json", [item for item, _ in items])
    out = tmp_path / f"pred_{task}.jsonl"
    predict_with(engine, data, folder, out, batch_size=3, progress=False)

    rows = bird_rows(out)
    assert sorted(i for i, *_ in rows) == list(range(len(items)))  # int(id), one per item
    assert [m for _, m, *_ in rows] == [n.split("_")[0] for n in NAMES.values() for _ in "ab"]
    theirs = bird_score(rows)
    assert main(["evaluate", "--task", {"VG": "vg", "RO": "roc"}[task], str(out), "--json"]) == 0
    ours = json.loads(capsys.readouterr().out)
    for modality in BIRD_MODALITIES:
        assert theirs[modality] == pytest.approx(ours["per_modality"][modality] or 0.0, abs=1e-6)
    assert theirs["mean"] == pytest.approx(ours["mean"], abs=1e-6)
    assert 0 < ours["mean"] < 1
