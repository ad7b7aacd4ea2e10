"""bench/gpu_check.py's VoxTell part, as far as a machine without CUDA can check it: its
arguments, its refusals (no folder, an incomplete folder, no CUDA), and the measurement
itself on the CPU with the tiny random VoxTell (`experiments.tiny_voxtell`) on the sample CT
taken every 4th row and column (the GPU run uses the full-resolution CT)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("voxtell", reason="the voxtell package is not installed (extra: voxtell)")

from birdview.core.geometry import to_canonical  # noqa: E402
from birdview.core.io import load, scan  # noqa: E402
from birdview.core.resources import sample_ct_dir  # noqa: E402
from experiments.tiny_voxtell import build_tiny_voxtell  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_voxtell(tmp_path_factory.mktemp("gpu_check") / "voxtell_tiny", seed=0)


def test_the_voxtell_part_without_a_folder_is_refused_by_the_script():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--part", "voxtell"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "--part voxtell needs --voxtell FOLDER" in done.stdout


def test_an_unknown_part_is_an_argument_error_naming_voxtell(gpu_check, capsys):
    with pytest.raises(SystemExit) as exit_:
        gpu_check.main(["--part", "voxtel"])
    assert exit_.value.code == 2
    assert "'all', 'vlm', 'sam', 'voxtell'" in capsys.readouterr().err


def test_incomplete_voxtell_folders_are_refused_before_cuda_is_asked(
    gpu_check, tiny, tmp_path, capsys
):
    assert gpu_check.main(["--part", "voxtell", "--voxtell", str(tmp_path / "none")]) == 2
    assert "as it has no plans.json" in capsys.readouterr().out
    bank_only = tmp_path / "bank_only"
    shutil.copytree(tiny, bank_only, ignore=shutil.ignore_patterns("text_encoder"))
    np.savez(bank_only / "text_embeddings.npz", liver=np.zeros((1, 2560), np.float32))
    assert gpu_check.main(["--part", "all", "--voxtell", str(bank_only)]) == 2
    out = capsys.readouterr().out
    assert "The VoxTell check needs the text encoder: put Qwen3-Embedding-4B in" in out


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="a CUDA machine runs the check itself"
)
def test_a_complete_folder_without_cuda_is_refused(gpu_check, tiny, capsys):
    assert gpu_check.main(["--part", "voxtell", "--voxtell", str(tiny)]) == 2
    assert capsys.readouterr().out.strip() == (
        "No CUDA device: this check only means something on a GPU."
    )


def test_the_measurement_runs_on_the_cpu_with_the_tiny_voxtell(gpu_check, tiny):
    ct = to_canonical(load(scan(sample_ct_dir()).entries[0]))
    sx, sy, sz = ct.spacing_mm
    small = ct.with_changes(
        voxels=np.ascontiguousarray(ct.voxels[:, ::4, ::4]), spacing_mm=(sx * 4, sy * 4, sz)
    )
    row = gpu_check.voxtell_row(tiny, device="cpu", volume=small)
    assert (row["engine"], row["precision"], row["device"]) == ("voxtell", "fp32", "cpu")
    assert row["volume"] == [20, 128, 128] and row["patches"] == 1
    assert row["mask_on_grid"] and 0 < row["mask_voxels"] < small.voxels.size
    assert row["load_s"] > 0 and row["prompt_s"] > 0
    assert "peak_vram_gib" not in row
