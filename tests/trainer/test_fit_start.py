"""``fit``'s start: every check that needs no torch refuses before anything is written, and
whatever a failed start leaves is reused by the rerun (`trainer.fit.start`)."""

from __future__ import annotations

import shutil

import pytest

from tests.trainer.fit_helpers import build_data, short_run, tiny
from trainer.fit.recipe import load_recipe, recipe_to_yaml
from trainer.fit.run import fit
from trainer.fit.start import check_start

DEEP = 100_000


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Real training data and a tiny base: the inputs of a run that can start."""
    root = tmp_path_factory.mktemp("start")
    return {"train": build_data(root / "data"), "base": tiny("qwen2_vl", root / "base")}


def recipe(inputs, run_dir, **more):
    run_dir = more.pop("out", run_dir)
    return load_recipe("tiny-cpu", short_run(inputs["base"], inputs["train"], run_dir, **more))


def test_a_run_that_can_start_passes_and_writes_nothing(inputs, tmp_path):
    start = check_start(recipe(inputs, tmp_path / "out"))
    assert start.out == tmp_path / "out" and start.samples
    assert not (tmp_path / "out").exists()


def refusals(inputs, tmp_path) -> list[tuple[dict, str]]:
    folder_as_file = tmp_path / "data.json"
    folder_as_file.mkdir()
    deep = tmp_path / "deep.json"
    deep.write_text("[" * DEEP + "]" * DEEP)
    latin = tmp_path / "latin.json"
    latin.write_bytes('[{"id": "é"}]'.encode("latin-1"))
    no_config = tmp_path / "no_config"
    no_config.mkdir()
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    unknown = base_with(tmp_path / "unknown", '{"model_type": "pix2struct"}')
    fixed_size = base_with(tmp_path / "gemma", '{"model_type": "gemma3"}')
    bad_card = base_with(tmp_path / "bad_card", '{"model_type": "qwen2_vl"}', '{"card": []}')
    return [
        ({"data.train": folder_as_file}, "data.train '.*data.json' is a folder, not a file"),
        ({"data.train": deep}, "'.*deep.json' as item 0 nests lists or objects more than 64"),
        ({"data.train": latin}, "'.*latin.json' as it is not UTF-8 text"),
        ({"data.train": empty}, "'.*empty.json' as none of its items is usable"),
        ({"data.images": tmp_path / "none"}, "the images folder '.*none' does not exist"),
        ({"model.base": no_config}, "'.*no_config' has no config.json"),
        ({"model.base": tmp_path / "none"}, "model.base '.*none' is not a folder"),
        ({"train.batch_size": 5}, "batch_size 5 from train.per_device_batch 2"),
        ({"train.deepspeed": deep}, "'.*deep.json' as it nests lists or objects"),
        ({"out": deep}, "start a run in '.*deep.json' as it is a file, not a folder"),
        ({"model.base": unknown}, "model_type 'pix2struct' is not one BirdView knows"),
        ({"model.base": fixed_size}, "pack conversations as Gemma 3 attends bidirectionally"),
        (
            {"model.base": fixed_size, "data.pack": "false", "data.max_pixels": 4096},
            "image budget as Gemma 3 .* resizes every image to one fixed size",
        ),
        ({"model.base": bad_card}, "card must be an object"),
    ]


def base_with(folder, config: str, metadata: str = ""):
    """A base folder with only the files the checks read."""
    folder.mkdir()
    (folder / "config.json").write_text(config)
    if metadata:
        (folder / "birdview.json").write_text(metadata)
    return folder


def test_what_cannot_start_is_refused_before_anything_is_written(inputs, tmp_path):
    out = tmp_path / "out"
    for change, message in refusals(inputs, tmp_path):
        with pytest.raises((ValueError, FileNotFoundError), match=message):
            check_start(recipe(inputs, out, **change))
        assert not out.exists(), change


def leftovers(out, *, checkpoint: bool = False) -> None:
    """What a start that failed after the checks leaves (fit's `open_out`, the Trainer's
    folder), with a complete checkpoint when asked."""
    (out / "logs").mkdir(parents=True)
    (out / "logs" / "train.csv").write_text("step,loss\n")
    (out / "recipe.yaml").write_text("name: an earlier attempt\n")
    (out / "checkpoints" / "checkpoint-2").mkdir(parents=True)  # cut off mid-save
    if checkpoint:
        (out / "checkpoints" / "checkpoint-2" / "trainer_state.json").write_text("{}")


def test_a_failed_start_is_reused_with_or_without_resume(inputs, tmp_path):
    out = tmp_path / "out"
    leftovers(out)
    for resume in (False, True):  # whatever the recipe: nothing there can be resumed
        assert check_start(recipe(inputs, out, **{"train.lr": 0.1}), resume=resume).out == out


def test_a_run_with_a_checkpoint_needs_resume_and_its_own_recipe(inputs, tmp_path):
    out = tmp_path / "out"
    leftovers(out, checkpoint=True)
    other = recipe_to_yaml(recipe(inputs, out, **{"train.lr": 0.1}))
    (out / "recipe.yaml").write_text(other)
    with pytest.raises(ValueError, match="the folder is not empty; pass --resume"):
        check_start(recipe(inputs, out))
    with pytest.raises(ValueError, match=r"as its recipe differs at train\.lr"):
        check_start(recipe(inputs, out), resume=True)


def test_a_folder_of_other_files_is_never_taken_for_a_failed_start(inputs, tmp_path):
    out = tmp_path / "out"
    (out / "logs").mkdir(parents=True)  # no recipe.yaml: not left by fit
    with pytest.raises(ValueError, match="not empty"):
        check_start(recipe(inputs, out))
    (out / "recipe.yaml").write_text("name: x\n")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        check_start(recipe(inputs, out))


def test_a_start_that_fails_loading_the_base_is_rerun_in_the_same_folder(inputs, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(inputs["base"], damaged)
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    out = tmp_path / "out"
    steps = {"train.max_steps": 1, "eval.files": "[]"}

    with pytest.raises(ValueError, match="'.*damaged' as a weights file cannot be read"):
        fit(load_recipe("tiny-cpu", short_run(damaged, inputs["train"], out, **steps)))
    assert (out / "recipe.yaml").is_file()  # the start got that far

    result = fit(recipe(inputs, out, **steps), progress=False)  # another base, no --resume
    assert result.steps == 1 and (out / "birdview.json").is_file()
