"""Every refusal of ``birdview-train`` is one line, fast, and leaves nothing behind.

Each case runs the real command line in a subprocess on the real sample data with an input
it cannot use, and checks: exit status 2, exactly one ERROR line naming the cause (and, for a
source of the wrong layout, the files looked at and the layout expected), no traceback, done
in well under the 15-26 s that importing torch and transformers costs, and nothing written
next to ``--out`` (neither the folder nor a hidden partial one).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import shared

ROOT = Path(__file__).resolve().parents[2]
# Generous: the refusals take ~0.2 s of CPU; a loaded two-core machine stretches that.
LIMIT_S = 5.0


def refuse(tmp_path: Path, *args: str) -> str:
    """Run ``birdview-train ARGS`` in ``tmp_path``; the one error line it printed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    done = subprocess.run(
        [str(Path(sys.executable).with_name("birdview-train")), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    seconds = time.monotonic() - started
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert done.returncode == 2, done.stderr
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert seconds < LIMIT_S, f"{args}: refused in {seconds:.1f} s"
    assert "torch" not in done.stderr
    return errors[0].split(" ERROR trainer.cli: ", 1)[-1]


def assert_nothing_written(tmp_path: Path, *kept: str) -> None:
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)


def test_missing_source_and_unknown_option(tmp_path):
    line = refuse(tmp_path, "build-data", str(tmp_path / "missing"), "--out", "out")
    assert line.startswith("Unable to use source") and "does not exist" in line
    line = refuse(tmp_path, "build-data", f"{shared('brats_mr')}?colour=red", "--out", "out")
    assert "['colour'] are unknown" in line and "licence" in line
    assert_nothing_written(tmp_path)


def test_a_wrong_layout_names_the_files_looked_at_and_the_layout_expected(tmp_path):
    line = refuse(tmp_path, "build-data", f"masks2d:{shared('brats_mr')}", "--out", "out")
    assert "no usable labels" in line and "looked at 3 files" in line
    assert "imagesTr/BraTS2021_01646.nii.gz" in line and "X_mask/<stem>_<target>.png" in line

    line = refuse(tmp_path, "build-data", f"nifti:{shared('sammed2d_demo')}", "--out", "out")
    assert "data_demo/images/amos_0004_75.png" in line and "labelsTr/" in line
    assert "?labels=1:name" in line

    images = shared("sammed2d_demo", "data_demo", "images")  # detected as DICOM: no SEG
    line = refuse(tmp_path, "build-data", str(images), "--out", "out")
    assert "no SEG object found" in line and "amos_0004_75.png" in line and "SEG" in line

    line = refuse(tmp_path, "build-data", f"sammed2d:{shared('biomedparse_demo')}", "--out", "o")
    assert "as SA-Med2D" in line and "demo_mask/" in line and "masks/<case>" in line
    assert_nothing_written(tmp_path)


def test_labels_that_do_not_parse(tmp_path):
    line = refuse(tmp_path, "build-data", f"{shared('totalseg')}?labels=liver", "--out", "out")
    assert "labels='liver'" in line and "VALUE:NAME" in line
    assert_nothing_written(tmp_path)


def test_an_out_that_is_a_file_or_not_empty(tmp_path):
    (tmp_path / "afile").write_text("x")
    line = refuse(tmp_path, "build-data", str(shared("sammed2d_demo")), "--out", "afile")
    assert "as it is a file" in line
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    line = refuse(tmp_path, "build-data", str(shared("sammed2d_demo")), "--out", "full")
    assert "is not empty" in line
    assert_nothing_written(tmp_path, "afile", "full")


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [("--shard", "2/2", "shard '2/2'"), ("--shard", "x", "I/N"), ("--workers", "0", "0 workers")],
)
def test_bad_shard_or_workers(tmp_path, option, value, says):
    line = refuse(tmp_path, "build-data", str(shared("sammed2d_demo")), "--out", "o", option, value)
    assert says in line
    assert_nothing_written(tmp_path)


def test_merge_of_a_folder_that_is_not_a_shard(tmp_path):
    line = refuse(tmp_path, "merge-data", str(shared("brats_mr")), "--out", "out")
    assert "is not a finished shard" in line and "shard.json" in line
    assert_nothing_written(tmp_path)


def test_fit_without_its_training_file(tmp_path):
    line = refuse(
        tmp_path, "fit", "--config", "tiny-cpu", "--override", "data.train=none.json", "out=run"
    )
    assert "data.train 'none.json' is not a file" in line
    assert_nothing_written(tmp_path)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["predict", "--model", "m", "--data", "d.json", "--images", "no", "--out", "p.jsonl"],
            "images folder 'no' does not exist",
        ),
        (["evaluate", "--task", "vg", "none.jsonl"], "'none.jsonl' as it does not exist"),
        (["validate", "none.json", "--images", "no"], "images folder 'no' does not exist"),
        (["merge", "--base", "no", "--adapter", "no", "--out", "m"], "has no config.json"),
        (["fit", "--config", "none.yaml"], "neither a file nor one of the shipped recipes"),
        (["fit", "--config", "tiny-cpu", "--override", "train.lr=abc"], "not a number"),
    ],
)
def test_the_other_commands_refuse_alike(tmp_path, args, says):
    assert says in refuse(tmp_path, *args)
    assert_nothing_written(tmp_path)
