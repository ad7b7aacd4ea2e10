"""``birdview model-info``: the bundled demo checkpoint and tiny checkpoints of every family the
tiny factory builds, described from their files alone; folders it cannot or will not use
refused in one line."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from safetensors import safe_open

from birdview.__main__ import main as birdview_main
from birdview.core import families
from birdview.inference.model_info import main
from tests.conftest import REPO

DEMO = REPO / "resources" / "demo_model"


def _report(capsys, folder: Path) -> dict:
    assert main([str(folder), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _numels(folder: Path) -> dict[str, int]:
    """Each tensor's element count, as the safetensors library reads the file."""
    counts = {}
    for path in folder.glob("*.safetensors"):
        with safe_open(path, framework="numpy") as weights:
            for name in weights.keys():  # noqa: SIM118 - safe_open is not a mapping
                counts[name] = math.prod(weights.get_slice(name).get_shape())
    return counts


def _refusal(capsys, folder: Path) -> str:
    assert main([str(folder)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def _copy_small(source: Path, target: Path) -> Path:
    """A copy of a checkpoint folder (the weights too: the demo's are 15 MB)."""
    return Path(shutil.copytree(source, target))


def test_the_demo_checkpoint(capsys):
    report = _report(capsys, DEMO)
    config = json.loads((DEMO / "config.json").read_text(encoding="utf-8"))
    family = families.for_config(config)
    assert report["family"] == {"key": family.key, "title": family.title}
    numels = _numels(DEMO)
    assert report["parameters"]["total"] == sum(numels.values())
    vision = sum(n for name, n in numels.items() if name.startswith("model.visual."))
    assert report["parameters"]["vision_and_projector"] == vision > 0
    assert report["unquantised_under_nf4"] == list(family.unquantised)
    assert report["vision_tower_unquantised"] is True
    assert report["chat_template"] == "chat_template.jinja"
    assert report["processor"] == "processor_config.json"
    precisions = report["memory"]["precisions"]
    assert precisions["fp32"]["bytes"] == 4 * report["parameters"]["total"]
    assert precisions["bf16"]["bytes"] == 2 * report["parameters"]["total"]
    assert precisions["bf16"]["bytes"] > precisions["int8"]["bytes"] > precisions["nf4"]["bytes"]
    assert precisions["fp32"]["fits_ram"] is True  # 15 MB
    assert report["card"]["name"] == "BirdView demo model"
    assert report["card"]["trained_on"]["modalities"] == ["CT"]
    assert report["card_problem"] == ""


def test_the_text_report_says_what_matters(capsys):
    assert birdview_main(["model-info", str(DEMO)]) == 0
    text = capsys.readouterr().out
    title = families.for_config((DEMO / "config.json").read_text(encoding="utf-8")).title
    assert text.startswith("BirdView demo model (")
    assert f"family          {title} (key " in text
    assert "the vision tower stays unquantised (bf16)" in text
    assert "Trained on CT · abdomen · axial slice · 12 structures" in text
    assert "estimated, weights only" in text


@pytest.mark.parametrize("key", families.tiny_families())
def test_tiny_checkpoints_of_every_family(capsys, tiny_checkpoints, key):
    folder = tiny_checkpoints[key]
    report = _report(capsys, folder)
    assert report["family"]["key"] == key
    assert report["parameters"]["total"] == sum(_numels(folder).values())
    assert report["chat_template"] and report["processor"]
    assert report["card"] is None and report["card_problem"] == ""


def test_remote_code_is_refused(capsys, tmp_path):
    folder = _copy_small(DEMO, tmp_path / "auto_map")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["auto_map"] = {"AutoModel": "modeling_custom.CustomModel"}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    line = _refusal(capsys, folder)
    assert "has 'auto_map'" in line and "remote code runs arbitrary Python" in line
    assert "use a checkpoint of a family transformers supports natively" in line


def test_a_family_that_only_exists_as_remote_code_is_refused(capsys, tmp_path):
    remote = next(f for f in families.all_families() if f.remote_code)
    folder = _copy_small(DEMO, tmp_path / "remote")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["model_type"] = remote.model_types[0]
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    line = _refusal(capsys, folder)
    assert f"{remote.title} checkpoints need their own Python code" in line


def test_missing_and_damaged_folders_are_refused_in_one_line(capsys, tmp_path, damaged):
    assert "as it does not exist" in _refusal(capsys, tmp_path / "nowhere")
    assert "has no config.json" in _refusal(capsys, tmp_path)
    line = _refusal(capsys, damaged["truncated"])
    assert "as it is damaged: model.safetensors is cut short" in line
    broken = _copy_small(DEMO, tmp_path / "broken")
    (broken / "config.json").write_text('{"model_type": ', encoding="utf-8")
    assert "config.json is not JSON" in _refusal(capsys, broken)
    (broken / "config.json").write_text('{"model_type": "not_a_model"}', encoding="utf-8")
    assert "names model_type 'not_a_model', which is not one BirdView knows" in _refusal(
        capsys, broken
    )


def test_a_damaged_card_is_reported_and_the_model_still_described(capsys, tmp_path):
    folder = _copy_small(DEMO, tmp_path / "bad_card")
    record = json.loads((folder / "birdview.json").read_text(encoding="utf-8"))
    record["card"]["trained_on"]["modalities"] = "CT"
    (folder / "birdview.json").write_text(json.dumps(record), encoding="utf-8")
    report = _report(capsys, folder)
    assert report["card"] is None
    assert "card.trained_on.modalities must be a list of strings" in report["card_problem"]
    assert main([str(folder)]) == 0
    assert "card            unreadable: Unable to read" in capsys.readouterr().out
