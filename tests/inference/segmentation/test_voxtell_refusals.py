"""VoxTell's refusals that need no worker, with real folders: a prompt bank instead of the text
encoder (VoxTell's precomputed embeddings, here made with the tiny encoder), a prompt outside
it, and an interpreter where the voxtell package is really absent (a fresh Python whose path
holds the repository and numpy only)."""

from __future__ import annotations

import os
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
from tests.conftest import REPO  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_voxtell(tmp_path_factory.mktemp("tiny_voxtell") / "voxtell_tiny", seed=0)


@pytest.fixture(scope="module")
def bank_only(tiny, tmp_path_factory) -> Path:
    """The tiny folder without its text encoder, with a bank holding "liver" as the encoder
    embeds it (VoxTell's own embedding code), in VoxTell's .npz layout."""
    import torch
    from voxtell.inference.predictor import VoxTellPredictor

    predictor = VoxTellPredictor(
        model_dir=str(tiny),
        device=torch.device("cpu"),
        text_encoding_model=str(tiny / "text_encoder"),
        use_precomputed_embeddings=False,
    )
    vector = predictor.embed_text_prompts(["liver"])[0, 0].cpu().numpy().astype(np.float16)
    folder = tmp_path_factory.mktemp("bank") / "voxtell_tiny"
    shutil.copytree(tiny, folder, ignore=shutil.ignore_patterns("text_encoder"))
    np.savez(folder / "text_embeddings.npz", labels=np.array(["Liver"]), embeddings=vector[None])
    return folder


def test_a_prompt_bank_stands_in_for_the_text_encoder_and_names_what_it_lacks(bank_only):
    import torch

    from birdview.inference.segmentation.voxtell import Engine

    ct = to_canonical(load(scan(sample_ct_dir()).entries[0]))
    small = ct.with_changes(voxels=ct.voxels[:, ::4, ::4])
    engine = Engine(bank_only, "cpu", torch.float32)
    assert engine.files["encoder"] is None
    with pytest.raises(ValueError, match="'spleen' with VoxTell as it is not in the precomputed"):
        engine.segment_volume(small, "spleen", lambda: False)
    mask = engine.segment_volume(small, "liver", lambda: False)
    assert mask.shape == small.shape and 0 < mask.mean() < 1


def test_without_the_voxtell_package_the_folder_is_refused_with_the_install_line(tiny, tmp_path):
    import numpy

    only = tmp_path / "path"
    only.mkdir()
    site = Path(numpy.__file__).parent.parent
    for name in ("numpy", "numpy.libs"):
        if (site / name).exists():
            os.symlink(site / name, only / name)
    code = (
        "import sys; from pathlib import Path\n"
        f"sys.path = [p for p in sys.path if 'site-packages' not in p] + [{str(REPO)!r}, "
        f"{str(only)!r}]\n"
        "from birdview.inference.errors import ModelLoadError\n"
        "from birdview.inference.segmentation.voxtell import check_folder\n"
        "try:\n"
        f"    check_folder(Path({str(tiny)!r}))\n"
        "except ModelLoadError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "as the voxtell package is not installed" in done.stdout
    assert "pip install 'birdview[voxtell]'" in done.stdout


class _RunsCode:
    def __reduce__(self):
        return (print, ("code ran while unpickling",))


def test_a_checkpoint_that_would_run_code_is_refused_before_voxtell_opens_it(tmp_path, capsys):
    """nnU-Net's own extras (a device, numpy numbers, tuples) pass torch's weights-only
    loader; an object whose unpickling calls a function does not, and nothing runs."""
    import torch

    from birdview.inference.errors import ModelLoadError
    from birdview.inference.segmentation.voxtell import _check_weights_only

    checkpoint = tmp_path / "checkpoint_final.pth"
    torch.save(
        {
            "network_weights": {"w": torch.zeros(2)},
            "init_args": {"device": torch.device("cpu"), "fold": 0},
            "logging": {"mean_fg_dice": [np.float64(0.5), np.float32(0.2)], "epoch": np.int64(3)},
            "inference_allowed_mirroring_axes": (0, 1, 2),
        },
        checkpoint,
    )
    _check_weights_only(tmp_path, checkpoint)
    torch.save({"network_weights": {}, "trap": _RunsCode()}, checkpoint)
    with pytest.raises(ModelLoadError, match="holds more than weights and numbers"):
        _check_weights_only(tmp_path, checkpoint)
    assert "code ran" not in capsys.readouterr().out
