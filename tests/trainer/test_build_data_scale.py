"""``build-data`` at scale, on the real sample data: one worker and two write the same bytes, a
build killed with SIGKILL resumes to exactly the uninterrupted output, shards merged give
exactly one build's output, the JSON-lines twins hold the JSON lists' items, and a second
build into the same folder while one runs is refused.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import shared
from trainer.data.build import BuildSettings, build_dataset
from trainer.data.journal import WorkFolder
from trainer.data.shards import merge_shards
from trainer.data.sources import SourceReport, masks2d_files, parse_source

FILES = ("train.json", "test_vg.json", "test_roc.json", "test_rc.json", "test_mia.json")
SETTINGS = BuildSettings(slice_step=6)


def sources() -> list[str]:
    """2D SA-Med2D and BiomedParse images (runs of 16) and NIfTI volumes (one unit each):
    5 units, the last (BraTS) the largest."""
    return [
        str(shared("sammed2d_demo")),
        str(shared("biomedparse_demo")),
        str(shared("totalseg")),
        f"{shared('brats_mr')}?labels=1:necrosis,2:edema,4:enhancing tumour",
    ]


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_same_tree(a: Path, b: Path) -> None:
    left, right = tree(a), tree(b)
    assert sorted(left) == sorted(right)
    differing = [name for name in left if left[name] != right[name]]
    assert not differing, differing


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One uninterrupted build with one worker, in-process."""
    out = tmp_path_factory.mktemp("reference") / "data"
    build_dataset(sources(), out, SETTINGS, command="the command", workers=1)
    return out


def test_two_workers_write_the_same_bytes_as_one(reference, tmp_path):
    out = tmp_path / "data"
    result = build_dataset(sources(), out, SETTINGS, command="the command", workers=2)
    assert_same_tree(reference, out)
    assert result.images == len(list((out / "images").iterdir())) > 30
    assert result.peak_worker_rss_kb > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no partial left


def test_the_jsonl_twins_hold_the_json_lists_items(reference):
    for name in FILES:
        items = json.loads((reference / name).read_text(encoding="utf-8"))
        lines = (reference / name.replace(".json", ".jsonl")).read_text(encoding="utf-8")
        assert [json.loads(line) for line in lines.splitlines()] == items
    assert len(json.loads((reference / "train.json").read_text())) > 20


def test_shards_merged_give_one_builds_bytes(reference, tmp_path):
    shards = []
    for index in (1, 0, 2):  # built in any order, on "other machines"
        shard = tmp_path / f"shard{index}"
        build_dataset(
            sources(), shard, SETTINGS, command="the command", workers=1, shard=(index, 3)
        )
        shards.append(shard)
    counts = [len(list((s / "images").iterdir())) for s in shards]
    assert all(counts) and sum(counts) == len(list((reference / "images").iterdir()))
    merged = tmp_path / "merged"
    killed = WorkFolder(merged)  # a merge killed half-way, its first image linked
    killed.open({"merge": [str(s.resolve()) for s in sorted(shards)]}, 0)
    first = next((shards[1] / "images").iterdir())
    (killed.images / first.name).write_bytes(first.read_bytes())
    killed.release()
    result = merge_shards(shards, merged)
    assert_same_tree(reference, merged)
    assert result.images == sum(counts)
    assert all((s / "shard.json").is_file() for s in shards)  # the shards are left as they were

    with pytest.raises(ValueError, match=r"missing \[2\]"):
        merge_shards(shards[:2], tmp_path / "short")
    with pytest.raises(ValueError, match=r"given twice \[1\]"):
        merge_shards([*shards, shards[0]], tmp_path / "twice")
    other = tmp_path / "other"
    build_dataset(
        sources(), other, BuildSettings(slice_step=6, seed=1), command="x", workers=1, shard=(0, 3)
    )
    with pytest.raises(ValueError, match="shards of different builds"):
        merge_shards([other, *shards[:2]], tmp_path / "mixed")
    with pytest.raises(ValueError, match="not a finished shard"):
        merge_shards([reference], tmp_path / "notashard")
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # nothing half-done


def _build_command(out: str, workers: int = 1) -> list[str]:
    # Relative --out: the card's command is then the same in every folder the test builds in.
    return [
        sys.executable,
        "-m",
        "trainer.cli",
        "build-data",
        *sources(),
        "--out",
        out,
        "--slice-step",
        "6",
        "--workers",
        str(workers),
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def _run(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        _build_command("data"), cwd=folder, env=_env(), capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    """The command line's uninterrupted build, in ``whole/data``."""
    folder = tmp_path_factory.mktemp("whole")
    assert _run(folder).returncode == 0
    return folder


def _start(folder: Path, workers: int) -> subprocess.Popen:
    return subprocess.Popen(
        _build_command("data", workers),
        cwd=folder,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for_units(process: subprocess.Popen, journal: Path, units: int) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if journal.is_file() and journal.read_bytes().count(b"\n") >= units:
            return
        time.sleep(0.02)
    assert process.poll() is None, "the build ended before it could be killed mid-way"


def test_a_build_killed_mid_way_resumes_to_the_uninterrupted_output(whole, tmp_path):
    process = _start(tmp_path, workers=1)
    journal = tmp_path / ".data.partial" / "records.jsonl"
    _wait_for_units(process, journal, 2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done = journal.read_bytes().count(b"\n")
    assert done >= 2 and not (tmp_path / "data").exists()  # nothing under --out's name yet

    rerun = _run(tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert f"after {done} units" in rerun.stderr or f"after {done + 1} units" in rerun.stderr
    assert_same_tree(whole / "data", tmp_path / "data")
    # No duplicates: every image's items are one run in train.json (a unit done twice would
    # repeat its run after another image's).
    ids = [item["id"] for item in json.loads((tmp_path / "data" / "train.json").read_text())]
    runs = [name for n, name in enumerate(ids) if n == 0 or ids[n - 1] != name]
    assert len(runs) == len(set(runs)) > 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # the partial became data


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        if entry.name.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def test_a_dead_worker_fails_the_build_in_one_line_and_the_rerun_goes_on(whole, tmp_path):
    process = _start(tmp_path, workers=2)
    journal = tmp_path / ".data.partial" / "records.jsonl"
    _wait_for_units(process, journal, 1)
    # The forkserver is the build's child, the workers are its children.
    workers = [w for child in _children(process.pid) for w in _children(child)]
    assert workers, "no worker processes found"
    os.kill(workers[0], signal.SIGKILL)
    _, stderr = process.communicate(timeout=300)
    errors = [line for line in stderr.splitlines() if " ERROR " in line]
    assert process.returncode == 2 and "Traceback" not in stderr, stderr
    assert len(errors) == 1 and "a worker process died" in errors[0]
    assert journal.is_file() and not (tmp_path / "data").exists()

    rerun = _run(tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert_same_tree(whole / "data", tmp_path / "data")


def test_a_partial_build_of_other_settings_is_not_resumed(reference, tmp_path):
    out = tmp_path / "data"
    stale = WorkFolder(out)
    stale.open({"sources": ["elsewhere"], "settings": {"seed": 7}}, 0)
    (stale.images / "stale.png").write_bytes(b"not a png")
    stale.journal.write_text('{"unit": 0, "source": 0, "records": [], "skipped": {}}\n')
    stale.release()  # as a build killed after one unit leaves it
    build_dataset(sources(), out, SETTINGS, command="the command", workers=1)
    assert_same_tree(reference, out)


def test_a_second_build_into_the_same_folder_is_refused_while_one_runs(tmp_path):
    out = tmp_path / "data"
    running = WorkFolder(out)
    running.open({"another": "build"}, 0)  # holds the lock, as a running build does
    try:
        with pytest.raises(ValueError, match="another build is writing to"):
            build_dataset([str(shared("sammed2d_demo"))], out, SETTINGS, workers=1)
        assert running.path.is_dir() and not out.exists()  # the running build is untouched
    finally:
        running.release()
    build_dataset([str(shared("sammed2d_demo"))], out, SETTINGS, workers=1)  # then it builds
    assert (out / "train.json").is_file()


def test_masks_go_to_the_longest_image_name_they_start_with(tmp_path):
    """The pairing is a look-up per "_" of a mask's name (not a pass over every image, which
    SA-Med2D-20M's 20 M masks could not afford); it keeps the rule: the longest stem wins."""
    demo = shared("biomedparse_demo")
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo_mask").mkdir()
    image = demo / "demo" / "01_CT_lung.png"
    mask = demo / "demo_mask" / "01_CT_lung_nodule.png"
    for stem in ("01_CT", "01_CT_lung"):  # one image's stem starts the other's
        (tmp_path / "demo" / f"{stem}.png").write_bytes(image.read_bytes())
    for name in ("01_CT_lung_nodule", "01_CT_lung_left_nodule", "01_CT_liver", "02_CT_lung_x"):
        (tmp_path / "demo_mask" / f"{name}.png").write_bytes(mask.read_bytes())
    spec = parse_source(f"masks2d:{tmp_path}")
    report = SourceReport(spec.text, spec.kind, spec.dataset, {})
    owned = {Path(f.image).stem: sorted(m[0] for m in f.masks) for f in masks2d_files(spec, report)}
    assert owned == {"01_CT": ["liver"], "01_CT_lung": ["left_nodule", "nodule"]}
    assert report.skipped == {"mask without an image": 1}
