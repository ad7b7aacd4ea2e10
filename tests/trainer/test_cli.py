"""``birdview-train`` refuses hostile and broken inputs as a user meets it: the real command
line in a process of its own, one line naming the file and the cause, a non-zero exit, no
traceback, and no torch or transformers imported (their import alone took 15–26 s on a
loaded machine; a refusal must take a moment).

Wall-clock limits would be flaky on a shared 2-core machine, so the speed is asserted through
what it depends on: the process never imports the heavy libraries before refusing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO
from tests.trainer.fit_helpers import env

DEEP = 100_000
HEAVY = ("torch", "transformers")
# Runs the command line, then says which heavy modules the process had imported by then.
SCRIPT = f"""
import json, sys
from trainer.cli import main
code = main(sys.argv[1:])
print(json.dumps({{"code": code, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""


def birdview_train(*args: str | Path, cwd: Path) -> tuple[int, str, list[str]]:
    """(exit status, stdout + stderr without the last line, heavy modules imported)."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *map(str, args)],
        cwd=cwd,
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    *lines, last = done.stdout.strip().splitlines() or [""]
    assert last.startswith("{"), done.stdout + done.stderr  # main() returned: no exception
    result = json.loads(last)
    return result["code"], "\n".join(lines) + done.stderr, result["heavy"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """Real broken files, and a folder standing where a file should be."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "images").mkdir()
    (root / "folder.json").mkdir()
    (root / "nested.json").write_text("[" * DEEP + "]" * DEEP)
    (root / "nested.yaml").write_text("[" * DEEP + "]" * DEEP)
    (root / "latin1.json").write_bytes('[{"id": "café"}]'.encode("latin-1"))
    (root / "latin1.yaml").write_bytes("name: café\n".encode("latin-1"))
    (root / "broken.yaml").write_text("model: [unclosed\n")
    (root / "empty.json").write_text("[]")
    traversal = {"id": "x", "conversations": [["<img>../../etc/passwd</img>\nWhere?", "Here"]]}
    (root / "traversal.json").write_text(json.dumps([traversal]))
    (root / "base").mkdir()
    (root / "base" / "config.json").write_text("{}")  # enough for the checks before torch
    return root


CASES = {
    "validate nested JSON": (
        ["validate", "nested.json", "--images", "images"],
        1,
        "Unable to read 'nested.json' as item 0 nests lists or objects more than 64 deep",
    ),
    "validate a folder as the file": (
        ["validate", "folder.json", "--images", "images"],
        2,
        "Unable to read 'folder.json' as it is a folder, not a file",
    ),
    "validate non-UTF-8": (
        ["validate", "latin1.json", "--images", "images"],
        1,
        "Unable to read 'latin1.json' as it is not UTF-8 text (byte 0xe9 cannot be decoded)",
    ),
    "validate a path out of --images": (
        ["validate", "traversal.json", "--images", "images"],
        1,
        "item 0 ('x'): image '../../etc/passwd' points outside 'images' (not opened)",
    ),
    "validate an empty test file": (
        ["validate", "empty.json", "--images", "images"],
        1,
        "no items: 'empty.json' is an empty list",
    ),
    "validate with a nested data card": (
        ["validate", "empty.json", "--images", "images", "--data-card", "nested.json"],
        2,
        "Unable to read the data card 'nested.json' as it nests lists or objects more than 64",
    ),
    "evaluate nested JSON": (
        ["evaluate", "--task", "vg", "nested.json"],
        2,
        "Unable to read predictions from 'nested.json' as line 1 nests too deeply",
    ),
    "evaluate a folder": (
        ["evaluate", "--task", "vg", "folder.json"],
        2,
        "Unable to read 'folder.json' as it is a folder, not a file",
    ),
    "evaluate non-UTF-8": (
        ["evaluate", "--task", "roc", "latin1.json"],
        2,
        "Unable to read predictions from 'latin1.json' as it is not UTF-8 text",
    ),
    "fit a nested recipe": (
        ["fit", "--config", "nested.yaml"],
        2,
        "Unable to read the recipe 'nested.yaml' as it nests too deeply",
    ),
    "fit a non-UTF-8 recipe": (
        ["fit", "--config", "latin1.yaml"],
        2,
        "Unable to read the recipe 'latin1.yaml' as it is not UTF-8 text",
    ),
    "fit a broken recipe": (
        ["fit", "--config", "broken.yaml"],
        2,
        "Unable to read the recipe 'broken.yaml' as it is not YAML (expected ',' or ']'",
    ),
    "fit nested training data": (
        [
            "fit",
            "--config",
            "tiny-cpu",
            "--set",
            "model.base=base",
            "data.train=nested.json",
            "out=run",
        ],  # fmt: skip
        2,
        "Unable to read 'nested.json' as item 0 nests lists or objects more than 64 deep",
    ),
    "fit a folder as the training file": (
        ["fit", "--config", "tiny-cpu", "--set", "data.train=folder.json", "out=run"],
        2,
        "Unable to train as data.train 'folder.json' is a folder, not a file",
    ),
    "predict nested JSON": (
        [
            "predict",
            "--model",
            "base",
            "--data",
            "nested.json",
            "--images",
            "images",
            "--out",
            "p.jsonl",
        ],  # fmt: skip
        2,
        "Unable to read 'nested.json' as item 0 nests lists or objects more than 64 deep",
    ),
    "predict an empty test file": (
        [
            "predict",
            "--model",
            "base",
            "--data",
            "empty.json",
            "--images",
            "images",
            "--out",
            "p.jsonl",
        ],  # fmt: skip
        2,
        "Unable to predict as 'empty.json' holds no items",
    ),
    "merge a folder without an adapter": (
        ["merge", "--base", "base", "--adapter", "folder.json", "--out", "merged"],
        2,
        "Unable to merge as 'folder.json' has no adapter_config.json",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_hostile_inputs_are_refused_at_once_in_one_line(files, case):
    args, code, message = CASES[case]

    status, output, heavy = birdview_train(*args, cwd=files)

    assert (status, heavy) == (code, []), output
    assert message in output
    assert "Traceback" not in output
    assert not (files / "run").exists() and not (files / "p.jsonl").exists()


def unlabelled_source(folder: Path) -> Path:
    """A BiomedParse-style source whose only mask is empty."""
    (folder / "train").mkdir(parents=True)
    (folder / "train_mask").mkdir()
    Image.fromarray(np.full((32, 32), 90, np.uint8)).save(folder / "train" / "01_CT_lung.png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(folder / "train_mask" / "01_CT_lung_x.png")
    return folder


def test_build_data_without_labels_is_refused_the_same_way_twice(tmp_path):
    unlabelled_source(tmp_path / "source")
    expected = (
        "Unable to build a dataset as no usable labels were found in 'source' (masks2d: every "
        "object under 16 px (1)); nothing was written"
    )
    for _ in range(2):  # the first refusal leaves nothing that blocks the second
        status, output, heavy = birdview_train("build-data", "source", "--out", "out", cwd=tmp_path)
        assert (status, heavy) == (2, []) and expected in output, output
        assert "Traceback" not in output
        assert sorted(p.name for p in tmp_path.iterdir()) == ["source"]


def test_verbose_adds_the_traceback(files):
    status, output, _ = birdview_train("-v", "evaluate", "--task", "vg", "folder.json", cwd=files)
    assert status == 2 and "Traceback" in output


def test_the_script_is_what_users_run():
    """The tests call `trainer.cli.main`, which is what the installed script runs."""
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'birdview-train = "trainer.cli:main"' in pyproject
