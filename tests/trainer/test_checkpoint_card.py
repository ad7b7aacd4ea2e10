"""The model card a fit leaves in its checkpoint: made from the data card of the build it
trained on (a real build of the SA-Med2D demo and a real 2-step fit of a tiny model)."""

from __future__ import annotations

import json
import shutil

import pytest

from birdview.core import families
from birdview.core.model_card import ModelCard, Overrides, TrainedOn, read_card, write_card
from tests.conftest import REPO
from tests.trainer.fit_helpers import build_data, short_run, tiny
from trainer.checkpoint_card import write_checkpoint_card
from trainer.fit.recipe import load_recipe
from trainer.fit.run import fit

DEMO = REPO / "resources" / "demo_model"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 2-step run of a tiny model on a build of the SA-Med2D demo, from a base that carries
    a card of its own."""
    root = tmp_path_factory.mktemp("card_fit")
    train = build_data(root / "data")
    base = tiny(families.tiny_families()[0], root / "base")
    write_card(base, ModelCard("base", trained_on=TrainedOn(body_regions=("abdomen",))))
    overrides = short_run(base, train, root / "out", **{"train.max_steps": 2, "eval.files": []})
    fit(load_recipe("tiny-cpu", overrides), progress=False)
    data_card = json.loads((root / "data" / "data_card.json").read_text(encoding="utf-8"))
    return {"out": root / "out", "data_card": data_card}


def test_fit_writes_a_card_from_its_data_card_and_its_base(run):
    card = read_card(run["out"])
    assert card is not None and card.name == "out"
    modalities = [key for key, row in run["data_card"]["modalities"].items() if row["train_images"]]
    assert len(card.trained_on.modalities) == len(modalities) > 0
    names = {row["name"] for row in run["data_card"]["labels"].values()}
    assert set(card.trained_on.structures) == names
    assert card.trained_on.body_regions == ("abdomen",)  # from the base's card
    meta = json.loads((run["out"] / "birdview.json").read_text(encoding="utf-8"))
    assert meta["format"] == "birdview-checkpoint" and meta["recipe"]["name"] == "tiny-cpu"


def test_a_card_already_there_is_kept(tmp_path):
    """A merge copies its adapter's birdview.json, card included: that card stays."""
    shutil.copy(DEMO / "birdview.json", tmp_path / "birdview.json")
    kept = read_card(tmp_path)
    assert kept is not None
    assert write_checkpoint_card(tmp_path) == kept
    assert read_card(tmp_path) == kept


def test_a_run_without_a_data_card_gets_no_card(tmp_path):
    record = json.loads((DEMO / "birdview.json").read_text(encoding="utf-8"))
    record.pop("card")
    record["data"].pop("card")
    (tmp_path / "birdview.json").write_text(json.dumps(record), encoding="utf-8")
    assert write_checkpoint_card(tmp_path) is None
    assert read_card(tmp_path) is None


def test_without_a_data_card_the_base_card_is_carried_over(tmp_path):
    base, out = tmp_path / "base", tmp_path / "tuned"
    base.mkdir()
    out.mkdir()
    write_card(base, ModelCard("base", overrides=Overrides(max_new_tokens=300)))
    record = json.loads((DEMO / "birdview.json").read_text(encoding="utf-8"))
    record.pop("card")
    record["base"] = str(base)
    (out / "birdview.json").write_text(json.dumps(record), encoding="utf-8")
    card = write_checkpoint_card(out)
    assert card == read_card(out) and card.name == "tuned"
    assert card.overrides.max_new_tokens == 300
