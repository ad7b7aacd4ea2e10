"""The model card in birdview.json: reading it strictly, writing it beside the trainer's record,
making it from a real data card, and the warnings it gives for real studies."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from birdview.core import families, geometry, io
from birdview.core.box_codecs import BoxCodec
from birdview.core.model_card import (
    MAX_CARD_FILE_BYTES,
    BoxConvention,
    ModelCard,
    Overrides,
    TrainedOn,
    card_for_checkpoint,
    card_warnings,
    read_card,
    write_card,
)
from birdview.core.prompts import Task, grounding_question
from tests.conftest import REPO, shared
from trainer.checkpoint_card import card_from_data_card

DEMO = REPO / "resources" / "demo_model"
SAMPLE_CT = REPO / "resources" / "samples" / "totalseg_ct"


@pytest.fixture(scope="module")
def data_card() -> dict:
    """The real data card of the demo model's sample-CT build, its images counted as training
    images: the demo build put every slice in its test files and taught the model those (the
    demo's own card names CT itself), where a training build counts them under train."""
    card = json.loads((DEMO / "data_card.json").read_text(encoding="utf-8"))
    for counts in card["modalities"].values():
        counts["train_images"], counts["test_images"] = counts["test_images"], 0
    return card


@pytest.fixture
def ct_card(data_card) -> ModelCard:
    base = ModelCard("base", trained_on=TrainedOn(body_regions=("abdomen",)))
    return card_from_data_card(data_card, name="Sample CT model", base_card=base)


def _study(path: Path):
    (entry,) = io.scan(path).entries
    return geometry.to_canonical(io.load(entry))


@pytest.fixture(scope="module")
def mr_study():
    return _study(shared("dcm4che_mr"))


@pytest.fixture(scope="module")
def ct_study():
    return _study(SAMPLE_CT)


def _write(folder: Path, text: str | bytes) -> Path:
    path = folder / "birdview.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return folder


# -- from the data card ------------------------------------------------------------------------


def test_a_card_from_the_demo_data_card_holds_its_modality_structures_and_plane(ct_card):
    trained = ct_card.trained_on
    assert trained.modalities == ("CT",)
    assert trained.body_regions == ("abdomen",)
    assert trained.image_kinds == ("axial slice",)
    assert {"liver", "spleen", "aorta", "T11 vertebra", "right adrenal gland"} <= set(
        trained.structures
    )
    assert "kidney_left" not in trained.structures  # taught only as "not in this image"
    assert ct_card.name == "Sample CT model"
    assert ct_card.summary().startswith("Trained on CT · abdomen · axial slice · 12 structures")


def test_a_fine_tune_card_adds_to_its_base_without_repeating(data_card):
    base = ModelCard("base", trained_on=TrainedOn(modalities=("ct", "MR"), structures=("Liver",)))
    card = card_from_data_card(data_card, name="tuned", base_card=base)
    assert card.trained_on.modalities == ("ct", "MR")  # "CT" repeats "ct", ignoring case
    assert card.trained_on.structures.count("Liver") == 1
    assert "liver" not in card.trained_on.structures


# -- reading and writing -------------------------------------------------------------------


def test_write_keeps_the_trainers_record_and_reads_back_equal(tmp_path, ct_card):
    shutil.copy(DEMO / "birdview.json", tmp_path / "birdview.json")
    before = json.loads((tmp_path / "birdview.json").read_text(encoding="utf-8"))
    before.pop("card", None)
    card = ModelCard(
        "tuned",
        description="A fine-tune",
        family=families.keys()[-1],
        trained_on=ct_card.trained_on,
        overrides=Overrides(
            prompts={"VG": "Find {target}.", "ROC": "Name what is at {region}."},
            box=BoxConvention(style="json", json_key="box_2d", order="yx"),
            pad_to_square=True,
            max_new_tokens=300,
            reasoning=False,
        ),
    )
    path = write_card(tmp_path, card)
    after = json.loads(path.read_text(encoding="utf-8"))
    assert read_card(tmp_path) == card
    assert {k: v for k, v in after.items() if k != "card"} == before
    assert after["card"]["overrides"]["prompts"] == {
        "RO": "Name what is at {region}.",
        "VG": "Find {target}.",
    }
    assert oct(os.stat(path).st_mode & 0o777) != oct(0o600)  # not private: no patient data


def test_overrides_apply_to_the_familys_codec_and_prompts():
    overrides = Overrides(prompts={"MIA": "Describe the image."}, box=BoxConvention(order="yx"))
    family = next(f for f in families.all_families() if f.codec.order == "xy")
    codec = overrides.box.apply(family.codec)
    assert isinstance(codec, BoxCodec) and codec.order == "yx"
    assert codec.style == family.codec.style and codec.relative == family.codec.relative
    assert overrides.prompt(Task.MIA) == "Describe the image." and overrides.prompt("VG") is None


def test_a_folder_without_a_card_has_none(tmp_path):
    assert read_card(tmp_path) is None
    assert read_card(tmp_path / "missing") is None
    trainer_record = json.loads((DEMO / "birdview.json").read_text(encoding="utf-8"))
    trainer_record.pop("card", None)
    _write(tmp_path, json.dumps(trainer_record))
    assert read_card(tmp_path) is None  # trained before cards existed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            {"card": {"name": "m", "trained_on": {"modalities": "CT"}}},
            r"as card\.trained_on\.modalities must be a list of strings, not the string 'CT'",
        ),
        (
            {"card": {"name": "m", "trained_on": {"structures": ["liver", 3]}}},
            r"card\.trained_on\.structures must be a list of strings, but holds the number 3",
        ),
        ({"card": {"name": "m", "colour": "red"}}, r"card\.colour is not a known key"),
        (
            {"card": {"name": "m", "overrides": {"box": {"style": "svg"}}}},
            r"card\.overrides\.box\.style must be one of tags, token_tags, json, not 'svg'",
        ),
        (
            {"card": {"name": "m", "overrides": {"generation": {"max_new_tokens": 0}}}},
            r"card\.overrides\.generation\.max_new_tokens must be a whole number from 1",
        ),
        (
            {"card": {"name": "m", "overrides": {"generation": {"reasoning": "yes"}}}},
            r"card\.overrides\.generation\.reasoning must be true or false",
        ),
        (
            {"card": {"name": "m", "overrides": {"prompts": {"VG": "Find it."}}}},
            r"card\.overrides\.prompts\.VG must hold \{target\}",
        ),
        (
            {"card": {"name": "m", "overrides": {"prompts": {"XX": "Hi"}}}},
            r"card\.overrides\.prompts names task 'XX'",
        ),
        ({"card": {"name": "m", "family": "llama"}}, r"card\.family 'llama' is not a model"),
        ({"card": {"name": "m", "schema": 2}}, r"card\.schema 2 is not one this BirdView reads"),
        ({"card": {"description": "no name"}}, r"card\.name is missing"),
        ({"card": ["m"]}, r"as card must be an object, not a list"),
        ({"name": "m", "trained_on": {}}, r"key 'name' is not known there"),
    ],
)
def test_a_bad_card_is_refused_in_one_line_naming_file_and_field(tmp_path, text, message):
    _write(tmp_path, json.dumps(text))
    with pytest.raises(ValueError, match=message) as caught:
        read_card(tmp_path)
    assert str(tmp_path / "birdview.json") in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"card": {"name": "m", "trained_on": {"modalities": [NaN]}}}', r"but holds NaN"),
        (b'{"card": {"name": "m", "schema": Infinity}}', r"schema must be a whole number, not "),
        (b'{"card": ', r"is not valid JSON"),
        (b"\xff\xfe{}", r"is not UTF-8 text"),
        (b"[" * 100_000 + b"]" * 100_000, r"nested too deeply"),
        (b"[1, 2]", r"holds a list, not an object"),
    ],
)
def test_a_damaged_file_is_refused(tmp_path, raw, message):
    _write(tmp_path, raw)
    with pytest.raises(ValueError, match=message):
        read_card(tmp_path)


def test_a_file_over_the_limit_is_not_read(tmp_path):
    _write(tmp_path, b" " * (MAX_CARD_FILE_BYTES + 1))
    with pytest.raises(ValueError, match=r"larger than 4 MiB"):
        read_card(tmp_path)


def test_a_folder_in_the_cards_place_is_refused(tmp_path):
    (tmp_path / "birdview.json").mkdir()
    with pytest.raises(ValueError, match=r"not a regular file"):
        read_card(tmp_path)


def test_writing_over_a_damaged_file_keeps_it(tmp_path):
    _write(tmp_path, b'{"format": "birdview-checkpoint", "recipe": ')
    with pytest.raises(ValueError, match=r"the card was not written"):
        write_card(tmp_path, ModelCard("m"))
    assert (tmp_path / "birdview.json").read_bytes().endswith(b'"recipe": ')


def test_cards_made_in_code_are_checked_too():
    with pytest.raises(ValueError, match=r"Unable to make a model card as name must not"):
        ModelCard("  ")
    with pytest.raises(ValueError, match=r"trained_on\.modalities must be a list of strings"):
        TrainedOn(modalities="CT")


# -- warnings --------------------------------------------------------------------------------


def test_an_mr_study_warns_a_ct_model(ct_card, mr_study):
    assert mr_study.modality == "MR"
    question = grounding_question("liver")
    warnings = card_warnings(
        ct_card,
        modality=mr_study.modality,
        question=question,
        body_part=str(mr_study.metadata.get("body_part", "")),
    )
    assert warnings == [
        "This model was trained on CT only; this study is MR — treat its boxes with caution."
    ]


def test_the_sample_ct_gives_a_ct_model_no_warning(ct_card, ct_study):
    body_part = str(ct_study.metadata.get("body_part", ""))
    assert body_part == "PARTIALBODY"  # says nothing about the region: no warning from it
    for target in ("liver", "Spleen", "the aorta", "T11", "vertebrae", "adrenal glands"):
        question = grounding_question(target)
        assert card_warnings(ct_card, modality="CT", question=question, body_part=body_part) == []


def test_an_unknown_structure_is_named(ct_card):
    (warning,) = card_warnings(ct_card, modality="CT", question="Where is the wrist?")
    assert warning.startswith("'wrist' is not among the structures this model was trained on: ")
    assert "liver" in warning and "(12 in all)" in warning


@pytest.mark.parametrize(
    "question",
    [
        "Where is the left liver located in the image?",
        "Can you find the livers in this image?",
        "Please detect the Inferior Vena Cava and give its bounding box.",
        "Show me the position of the portal vein.",
        "What can you interpret from the overall image?",
        "What is this?",
        "Is it normal?",
        "",
    ],
)
def test_questions_about_known_or_no_structures_give_no_structure_warning(ct_card, question):
    assert card_warnings(ct_card, modality="CT", question=question) == []


@pytest.mark.parametrize(
    ("modality", "body_part", "warned"),
    [
        ("MR", "", True),
        ("ct", "", False),
        ("OT", "", False),  # a raster image says nothing
        ("", "", False),
        ("CT", "WRIST", True),
        ("CT", "CHESTABDOMEN", False),
        ("CT", "ABDOMENPELVIS", False),
        ("CT", "HEAD", True),
        ("CT", "WHOLEBODY", False),
    ],
)
def test_modality_and_body_part(ct_card, modality, body_part, warned):
    got = card_warnings(ct_card, modality=modality, question="", body_part=body_part)
    assert bool(got) is warned, got


def test_dicom_codes_and_words_name_the_same_modality():
    card = ModelCard("x-ray model", trained_on=TrainedOn(modalities=("X-ray", "PET")))
    for code in ("DX", "CR", "PT", "xray"):
        assert card_warnings(card, modality=code, question="") == []
    (warning,) = card_warnings(card, modality="US", question="")
    assert warning.startswith("This model was trained on X-ray and PET only; this study is ")


def test_a_card_that_says_nothing_warns_of_nothing():
    card = ModelCard("unknown")
    assert card_warnings(card, modality="MR", question="Where is the wrist?") == []
    assert card_warnings(None, modality="MR", question="Where is the wrist?") == []


def test_an_adapters_card_speaks_for_the_model(tmp_path):
    model, adapter = tmp_path / "model", tmp_path / "adapter"
    model.mkdir()
    adapter.mkdir()
    write_card(model, ModelCard("base"))
    assert card_for_checkpoint(model, adapter).name == "base"
    write_card(adapter, ModelCard("tuned"))
    assert card_for_checkpoint(model, adapter).name == "tuned"
    assert card_for_checkpoint(adapter / "none") is None
    _write(model, b"{")
    with pytest.raises(ValueError, match=r"model/birdview.json' as it is not valid JSON"):
        card_for_checkpoint(model)
