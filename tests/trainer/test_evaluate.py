"""BiRD's evaluation rules (github.com/ShawnHuang497/BiRD, tests/models/BiRD/eval_*.py), one
corner case per test, on real scoring code."""

from __future__ import annotations

import json
import random
import time

import pytest
from PIL import Image

from trainer.cli import main
from trainer.evaluation import (
    box_values,
    clean_response,
    evaluate,
    evaluate_file,
    format_scores,
    iou,
    read_predictions,
    roc_correct,
    spice_unavailable_reason,
    vg_hits,
)
from trainer.medgrit import MODALITIES


def row(annotation: str, response: str, modality: str = "ct") -> dict:
    image = f"{modality}_00--Demo--case--z_0001.png"
    return {"id": image[:-4], "image": image, "question": "q", "annotation": annotation,
            "response": response}  # fmt: skip


def box(x1, y1, x2, y2) -> str:
    return f"<box>({x1},{y1}),({x2},{y2})</box>"


REF = f"The liver is located at <ref>liver</ref>{box(0, 0, 100, 100)}."


def recall(*rows: dict) -> float:
    return evaluate(list(rows), "vg").per_modality["ct"]


# -- cleaning -------------------------------------------------------------------------------


def test_im_end_after_a_period_cuts_the_response_and_keeps_the_period():
    assert clean_response("The liver.<|im_end|> more <box>(0,0),(1,1)</box>") == "The liver."
    assert clean_response("A.<|im_end|>B.<|im_end|>") == "A."
    # What follows the first ".<|im_end|>" is gone, boxes included.
    late = f"Nothing here.<|im_end|>{box(0, 0, 100, 100)}"
    assert recall(row(REF, late)) == 0.0


def test_im_end_before_a_newline_is_deleted_and_endoftext_too():
    assert clean_response("left <|im_end|>\nhip<|endoftext|>  ") == "left hip"
    assert clean_response("<|endoftext|> liver <|im_end|>") == "liver <|im_end|>"


def test_only_the_first_line_between_two_newlines_is_kept():
    assert clean_response("intro\nfirst line\nsecond line\nlast") == "first line"
    assert clean_response("one line\nand a tail") == "one line\nand a tail"
    assert clean_response("a\n\nb") == ""  # the line between them is empty
    # A box outside the kept line is not seen.
    assert recall(row(REF, f"The liver:\nnot here\n{box(0, 0, 100, 100)}")) == 0.0
    assert recall(row(REF, f"x\n{box(0, 0, 100, 100)}\ny")) == 1.0


# -- grounding ------------------------------------------------------------------------------


def test_iou_of_exactly_one_half_is_a_miss():
    assert iou((0, 0, 100, 100), (0, 0, 100, 50)) == 0.5
    assert recall(row(REF, box(0, 0, 100, 50))) == 0.0
    assert recall(row(REF, box(0, 0, 100, 51))) == 1.0


def test_one_prediction_may_hit_two_references():
    reference = f"<ref>kidney</ref>{box(0, 0, 100, 100)}{box(5, 5, 100, 100)}"
    assert vg_hits(reference, box(0, 0, 100, 100)) == (2, 2)
    assert recall(row(reference, box(0, 0, 100, 100))) == 1.0


def test_an_item_without_predicted_box_still_counts_its_references():
    scores = evaluate(
        [row(REF, box(0, 0, 100, 100)), row(REF + box(200, 200, 300, 300), "I cannot see it")],
        "vg",
    )
    assert scores.per_modality["ct"] == pytest.approx(1 / 3)
    assert scores.boxes["ct"] == 3 and scores.counts["ct"] == 2


def test_items_whose_reference_has_no_box_are_skipped():
    scores = evaluate([row(REF, box(0, 0, 100, 100)), row("No box here.", "none")], "vg")
    assert scores.per_modality["ct"] == 1.0 and scores.counts["ct"] == 1
    only_boxless = evaluate([row("No box here.", box(0, 0, 1, 1))], "vg")
    assert only_boxless.per_modality["ct"] is None and only_boxless.counts["ct"] == 0


def test_bare_pairs_are_read_only_when_there_is_no_box_tag():
    assert recall(row(REF, "It is at (0,0),(100,100).")) == 1.0
    with_tag = f"{box(500, 500, 600, 600)} or rather (0,0),(100,100)"
    assert recall(row(REF, with_tag)) == 0.0
    # Bare pairs are integers without spaces; anything else is not a box.
    assert recall(row(REF, "(0, 0), (100, 100)")) == 0.0
    assert recall(row(REF, "(0.0,0),(100,100)")) == 0.0


def test_float_coordinates_count_and_malformed_ones_give_iou_zero():
    assert box_values("(0.5,0),(100.25,100)") == (0.5, 0.0, 100.25, 100.0)
    assert recall(row(REF, box(0.0, 0.0, 99.5, 100))) == 1.0
    for bad in ("(0,0),(100)", "(a,b),(c,d)", "(0,0),(100,100),(5,5)", "", "0 0 100 100"):
        assert box_values(bad) is None
        assert recall(row(REF, f"<box>{bad}</box>")) == 0.0
    # A malformed reference box is counted, and can never be hit.
    assert evaluate([row("<box>(0,0),(1)</box>", "<box>(0,0),(1)</box>")], "vg").boxes["ct"] == 1
    assert recall(row("<box>(0,0),(1)</box>", "<box>(0,0),(1)</box>")) == 0.0


def test_zero_area_boxes_give_iou_zero_without_dividing_by_zero():
    assert iou((5, 5, 5, 5), (5, 5, 5, 5)) == 0.0
    assert iou((0, 0, 100, 100), (50, 50, 50, 90)) == 0.0
    assert recall(row(f"<ref>dot</ref>{box(5, 5, 5, 5)}", box(5, 5, 5, 5))) == 0.0
    assert recall(row(REF, box(0, 0, 0, 100))) == 0.0


def test_iou_has_no_plus_one():
    # With +1 widths this would be 101*51 / (101*101) > 0.5 as well, but 50/100 exactly.
    assert iou((0, 0, 100, 100), (0, 0, 100, 50)) == 0.5
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)


# -- referring object classification --------------------------------------------------------


def test_roc_finds_each_reference_word_as_a_substring():
    assert roc_correct("Kidney", "The kidneys.")
    assert not roc_correct("Kidneys", "the kidney")
    assert roc_correct("Hip left", "This is the left hip")
    assert not roc_correct("Hip left", "a hip")
    assert roc_correct("Lumbar vertebra", "LUMBAR VERTEBRAE")
    scores = evaluate([row("Kidney", "kidneys"), row("Hip left", "hip")], "roc")
    assert scores.per_modality["ct"] == 0.5


def test_roc_response_is_cleaned_first():
    assert not evaluate([row("Liver", "Spleen.<|im_end|>liver")], "roc").per_modality["ct"]
    assert evaluate([row("Liver", "x\nLiver\ny")], "roc").per_modality["ct"] == 1.0


# -- modalities and means -------------------------------------------------------------------


def test_absent_modalities_count_zero_in_the_mean_but_not_in_mean_present():
    rows = [row("Liver", "liver", "ct"), row("Liver", "liver", "mr"), row("Liver", "no", "mr")]
    scores = evaluate(rows, "roc")
    assert scores.per_modality["ct"] == 1.0 and scores.per_modality["mr"] == 0.5
    assert scores.per_modality["fundus"] is None and scores.counts["fundus"] == 0
    assert scores.mean == pytest.approx(1.5 / 8)
    assert scores.mean_present == pytest.approx(0.75)
    assert list(scores.per_modality) == list(MODALITIES)


def test_modality_is_the_file_name_up_to_the_first_underscore():
    x_ray = dict(row("Rib", "rib"), image="/data/images/x_ray--ChestX--p1--x_0001.png")
    unknown = dict(row("Rib", "rib"), image="images/amos_0507_31.png")
    scores = evaluate([x_ray, unknown], "roc")
    assert scores.per_modality["x"] == 1.0
    assert scores.per_modality["amos"] == 1.0  # listed, but outside the 8: not in the means
    assert scores.mean == pytest.approx(1 / 8) and scores.mean_present == 1.0


def test_same_predictions_give_identical_numbers(tmp_path):
    rng = random.Random(7)
    rows = []
    for n in range(400):
        x, y = rng.randint(0, 800), rng.randint(0, 800)
        guess = box(x + rng.randint(-30, 30), y, x + 150, y + rng.randint(100, 200))
        rows.append(row(f"<ref>a</ref>{box(x, y, x + 150, y + 150)}", guess, MODALITIES[n % 5]))
    path = tmp_path / "pred.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    first, second = evaluate_file(path, "vg").to_dict(), evaluate_file(path, "vg").to_dict()
    assert json.dumps(first) == json.dumps(second)
    assert 0 < first["mean"] < 1


def test_thirty_thousand_rows_are_scored_in_seconds():
    rows = [
        row(REF, f"At {box(0, 0, 100, 100 - n % 60)}.", MODALITIES[n % 8]) for n in range(30_000)
    ]
    started = time.perf_counter()
    vg = evaluate(rows, "vg")
    roc = evaluate([row("Hip left", "left hip", MODALITIES[n % 8]) for n in range(30_000)], "roc")
    assert time.perf_counter() - started < 20
    assert vg.mean == pytest.approx(50 / 60, abs=0.01) and roc.mean == 1.0


# -- captions (pycocoevalcap, Java) ---------------------------------------------------------

CAPTIONS = [
    ("ct", "This region contains the liver, a large abdominal organ.",
     "This region contains the liver.<|im_end|>"),
    ("ct", "The lumbar vertebra is visible in the lower back.", "the lumbar vertebra"),
    ("ct", "A kidney with a small cyst.", "a kidney with a cyst"),
    ("mr", "A brain tumor is visible in the left hemisphere.", "a tumor in the brain"),
    ("mr", "The ventricles are enlarged.", ""),
]  # fmt: skip


def caption_rows(modalities=("ct", "mr")) -> list[dict]:
    return [row(ref, resp, m) for m, ref, resp in CAPTIONS if m in modalities]


@pytest.fixture(scope="module")
def rc_scores():
    return evaluate(caption_rows(), "rc")


def test_rc_reports_coco_metrics_per_modality_and_spice_only_when_it_can_run(rc_scores):
    ct_alone = evaluate(caption_rows(("ct",)), "rc")

    ct = rc_scores.per_modality["ct"]
    assert set(ct) == {
        "BLEU-1",
        "BLEU-2",
        "BLEU-3",
        "BLEU-4",
        "METEOR",
        "ROUGE-L",
        "CIDEr",
        "SPICE",
    }
    assert 0 < ct["BLEU-1"] <= 1 and 0 < ct["METEOR"] < 1 and ct["CIDEr"] > 0
    # CIDEr's document frequencies come from the modality's own items only.
    assert ct_alone.per_modality["ct"]["CIDEr"] == ct["CIDEr"]
    assert rc_scores.per_modality["x"] is None
    assert rc_scores.counts["ct"] == 3 and rc_scores.counts["mr"] == 2
    assert rc_scores.mean["ROUGE-L"] == pytest.approx(
        (ct["ROUGE-L"] + rc_scores.per_modality["mr"]["ROUGE-L"]) / 8
    )
    reason = spice_unavailable_reason()
    if reason is None:
        assert ct["SPICE"] is not None and rc_scores.metric == "SPICE"
    else:  # never reported as 0
        assert ct["SPICE"] is None and rc_scores.mean["SPICE"] is None
        assert rc_scores.unavailable == {"SPICE": reason}
        assert "SPICE unavailable" in format_scores(rc_scores)


def test_mia_reports_mbmr_with_bleu_1_and_with_bleu_4_and_no_spice(rc_scores):
    scores = evaluate(caption_rows(), "mia")

    ct = scores.per_modality["ct"]
    assert "SPICE" not in ct and scores.metric == "mBMR (BLEU-1)"
    rest = ct["METEOR"] + ct["ROUGE-L"]
    assert ct["mBMR (BLEU-1)"] == pytest.approx((ct["BLEU-1"] + rest) / 3)
    assert ct["mBMR (BLEU-4)"] == pytest.approx((ct["BLEU-4"] + rest) / 3)
    mr = scores.per_modality["mr"]
    assert scores.mean["mBMR (BLEU-4)"] == pytest.approx(
        (ct["mBMR (BLEU-4)"] + mr["mBMR (BLEU-4)"]) / 8
    )
    assert scores.mean_present["METEOR"] == pytest.approx((ct["METEOR"] + mr["METEOR"]) / 2)
    # The same rows scored twice (once as RC) give identical numbers.
    for modality in ("ct", "mr"):
        for metric in ("BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr"):
            assert scores.per_modality[modality][metric] == rc_scores.per_modality[modality][metric]


# -- files and the command line -------------------------------------------------------------


def write_rows(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_evaluate_command_prints_json_and_draws_a_chart(tmp_path, capsys):
    pred = tmp_path / "pred.jsonl"
    write_rows(pred, [row(REF, box(0, 0, 100, 100)), row(REF, "no", "mr"), row(REF, "x", "pet")])
    chart = tmp_path / "out" / "vg.png"

    assert main(["evaluate", "--task", "vg", str(pred), "--json", "--plot", str(chart)]) == 0

    data = json.loads(capsys.readouterr().out)
    assert data["per_modality"]["ct"] == 1.0 and data["per_modality"]["mr"] == 0.0
    assert data["mean"] == pytest.approx(1 / 8) and data["mean_present"] == pytest.approx(1 / 3)
    assert data["counts"]["ct"] == 1 and data["counts"]["fundus"] == 0
    with Image.open(chart) as image:
        assert image.format == "PNG" and image.size == (900, 480)
        colours = {c for _, c in image.convert("RGB").getcolors(1 << 20)}
    assert (70, 120, 190) in colours  # the bars
    assert (200, 80, 60) in colours  # the mean line


def test_evaluate_command_prints_a_table(tmp_path, capsys):
    pred = tmp_path / "pred.jsonl"
    write_rows(pred, [row("Liver", "liver"), row("Liver", "spleen", "mr")])

    assert main(["evaluate", "--task", "roc", str(pred)]) == 0

    out = capsys.readouterr().out
    assert (
        "ct" in out
        and "100.00" in out
        and "mean_present" in out
        and "12.50" in out
        and "50.00" in out
    )
    # Each mean says how many modalities it is over: all 8, and the 2 with items.
    assert "mean (8) " in out and "mean_present (2) " in out


def test_bad_prediction_files_are_refused_with_the_line(tmp_path):
    pred = tmp_path / "pred.jsonl"
    pred.write_text(json.dumps(row("a", "b")) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2 is not JSON"):
        read_predictions(pred)
    pred.write_text(json.dumps({"image": "ct_1.png", "annotation": "a"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1 lacks 'response'"):
        read_predictions(pred)
    with pytest.raises(ValueError, match="task 'grounding' is not one of"):
        evaluate([], "grounding")
    assert main(["evaluate", "--task", "vg", str(tmp_path / "none.jsonl")]) == 2
