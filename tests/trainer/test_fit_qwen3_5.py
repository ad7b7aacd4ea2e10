"""Qwen3.5 (hybrid linear/full attention) as a fit base: it trains unpacked, writes JSON boxes
on the 0–1000 grid, loads in the app, and refuses packing (its linear-attention state would
run from one conversation into the next on the torch path)."""

from __future__ import annotations

import json

import pytest

from tests.trainer.fit_helpers import build_data, short_run, tiny_qwen3_5
from trainer.fit.recipe import load_recipe
from trainer.fit.run import fit


def test_qwen3_5_trains_unpacked_and_refuses_packing(tmp_path):
    from birdview.inference.loader import load_checkpoint

    train = build_data(tmp_path / "data")
    base = tiny_qwen3_5(tmp_path / "base")
    packed = short_run(base, train, tmp_path / "packed")
    with pytest.raises(ValueError, match="linear-attention layers .* set data.pack=false"):
        fit(load_recipe("tiny-cpu", packed), progress=False)

    out = tmp_path / "out"
    overrides = short_run(base, train, out, **{"data.pack": "false", "train.max_steps": 2})
    result = fit(load_recipe("tiny-cpu", overrides), progress=False)
    assert result.steps == 2 and result.loss is not None
    assert json.loads((out / "birdview.json").read_text())["family"] == "qwen3_5"
    assert load_checkpoint(out, precision="fp32", device="cpu").family == "qwen3_5"
