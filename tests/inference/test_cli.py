"""``birdview ask`` end to end, in a subprocess, on the taught checkpoint."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from birdview.core.assistant import readable_answer
from birdview.core.prompts import MAX_QUESTION_CHARS
from birdview.inference._checkpoint_files import checkpoint_sha256, hashed_files
from birdview.inference.offline import OFFLINE_ENV
from tests.conftest import REPO, shared
from tests.inference.conftest import DAMAGE_MESSAGES, FAMILIES, LIVER_PX, QUESTION

TRAIN = str(Path(sys.executable).parent / "birdview-train")
IMAGE = shared("sammed2d_demo", "data_demo", "images", "s0114_111.png")
# How we call it: in this process, and through the model worker as the viewer does.
MODES = {"in-process": (), "worker": ("--worker",)}


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **OFFLINE_ENV, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "birdview", "ask", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("mode", sorted(MODES))
def test_ask_json_gives_the_taught_box_in_slice_pixels(finetuned, mode):
    model = finetuned("qwen3_vl")
    done = _run(*MODES[mode], "--model", str(model), "--image", str(IMAGE), "--json", QUESTION)

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) == {
        "text", "reasoning", "raw", "boxes", "family", "model", "checkpoint_sha256",
        "precision", "device", "seconds",
    }  # fmt: skip
    assert (report["family"], report["reasoning"]) == ("qwen3_vl", "")
    assert (report["precision"], report["device"]) == ("fp32", "cpu")
    (box,) = report["boxes"]
    assert box["label"] == "liver"
    assert np.allclose([box[k] for k in ("x1", "y1", "x2", "y2")], LIVER_PX, atol=0.3)
    assert report["checkpoint_sha256"] == checkpoint_sha256(hashed_files(model))


@pytest.mark.parametrize("family", FAMILIES)
def test_a_tiny_model_of_every_family_answers_at_fp32_and_nf4(tmp_path, family):
    tiny = subprocess.run(
        [TRAIN, "tiny", "--family", family, "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tiny.returncode == 0, tiny.stderr

    for precision in ("fp32", "nf4"):
        done = _run(
            "--model", str(tmp_path), "--image", str(IMAGE), "--precision", precision,
            "--max-new-tokens", "8", "--json", QUESTION,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert (report["family"], report["precision"]) == (family, precision)
        assert isinstance(report["text"], str) and isinstance(report["reasoning"], str)


def test_ask_json_text_is_readable_and_raw_is_as_generated(finetuned):
    done = _run("--model", str(finetuned("qwen3_vl")), "--image", str(IMAGE), "--json", QUESTION)

    report = json.loads(done.stdout)
    assert "bbox_2d" in report["raw"]  # Qwen3-VL's JSON box markup, as generated
    assert report["text"] == readable_answer(report["raw"], "qwen3_vl")
    assert not re.search(r"bbox_2d|```|<\|", report["text"])  # the box itself is in "boxes"
    assert report["text"] == "liver"  # the taught answer is the box alone: its label reads


def test_plain_ask_prints_the_readable_answer_and_the_box_in_pixels(finetuned):
    done = _run("--model", str(finetuned("qwen3_vl")), "--image", str(IMAGE), QUESTION)

    assert done.returncode == 0, done.stderr
    text, box = done.stdout.strip().splitlines()
    assert text == "liver" and "bbox_2d" not in done.stdout
    label, edges = box.split(": ")
    assert label.strip() == "box liver"
    values = [float(v) for v in edges.split(" (")[0].split()]
    assert np.allclose(values, LIVER_PX, atol=1)


def test_ask_bad_input_exits_2_with_one_line(tmp_path):
    done = _run("--model", str(tmp_path / "none"), "--image", str(IMAGE), QUESTION)

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("birdview ask: error: Unable to load")


def test_ask_slice_out_of_range_exits_2(tiny_checkpoints):
    volume = shared("totalseg", "example_ct_sm.nii.gz")
    done = _run(
        "--model", str(tiny_checkpoints["qwen3_vl"]), "--image", str(volume), "--slice", "99", "Q"
    )

    assert done.returncode == 2
    assert "the axial plane has slices 0 to 29" in done.stderr


def _one_line_error(done: subprocess.CompletedProcess) -> str:
    """The single stderr line of a refused ask (exit 2, no traceback), without its prefix."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("birdview ask: error: ")
    return line.removeprefix("birdview ask: error: ")


@pytest.mark.parametrize("mode", sorted(MODES))
def test_unreadable_image_names_the_file_and_why(tiny_checkpoints, tmp_path, mode):
    junk = tmp_path / "scan.dcm"
    junk.write_bytes(b"not an image")
    started = time.monotonic()
    done = _run(
        *MODES[mode], "--model", str(tiny_checkpoints["qwen3_vl"]), "--image", str(junk), "Q"
    )

    assert _one_line_error(done) == f"Unable to read '{junk}' as it is not a DICOM file"
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("damage", sorted(DAMAGE_MESSAGES))
def test_damaged_checkpoint_names_the_folder_and_why(damaged, damage, mode):
    folder = damaged[damage]
    started = time.monotonic()
    done = _run(*MODES[mode], "--model", str(folder), "--image", str(IMAGE), QUESTION)

    where = re.escape(str(folder))
    expected = rf"Unable to load the checkpoint at '{where}' {DAMAGE_MESSAGES[damage]}; .*"
    assert re.fullmatch(expected, _one_line_error(done))
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("mode", sorted(MODES))
def test_too_long_question_is_refused_before_the_model_loads(tmp_path, mode):
    """The model folder does not exist: the question is refused before it is looked at."""
    question = "Where is the liver? " * 6000  # 120 KB
    done = _run(*MODES[mode], "--model", str(tmp_path / "none"), "--image", str(IMAGE), question)

    assert _one_line_error(done) == (
        "Unable to ask as the question is 120,000 characters long and the limit is "
        f"{MAX_QUESTION_CHARS:,}; shorten it, or ask about one finding at a time"
    )


@pytest.mark.parametrize("mode", sorted(MODES))
def test_a_budget_below_one_is_refused_before_the_model_loads(tmp_path, mode):
    """The ask's options are checked as one spec, before the image or the model is read."""
    done = _run(
        *MODES[mode], "--model", str(tmp_path / "none"), "--image", str(tmp_path / "none.png"),
        "--max-new-tokens", "0", QUESTION,
    )  # fmt: skip

    assert _one_line_error(done) == (
        "Unable to ask as max_new_tokens 0 is below 1; leave it unset for the default budget"
    )
