"""The parts of ``build-data`` on their own: names, wordings, boxes, sources, split."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pytest

from birdview.core.prompts import (
    analysis_question,
    caption_question,
    grounding_question,
    referring_question,
)
from tests.conftest import shared
from trainer.data import conversations as text
from trainer.data.boxes import PixelBox, Region, components, region_of, regions_of
from trainer.data.build import BuildSettings, ImageRecord, split_patients
from trainer.data.names import article, modality_from_words, readable
from trainer.data.sources import parse_source
from trainer.medgrit import task_of

REGION = "<box>(10,20),(300,400)</box>"


# -- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "name"),
    [
        ("lung_lower_lobe_left", "left lower lobe of the lung"),
        ("vertebrae_T9", "T9 vertebra"),
        ("hip_left", "left hip"),
        ("left+heart+ventricle", "left ventricle of the heart"),
        ("COVID-19+infection", "COVID-19 infection"),
        ("rib_right_11", "right 11th rib"),
        ("inferior_vena_cava", "inferior vena cava"),
        ("public+symphysis", "pubic symphysis"),
        ("heart_myocardium", "myocardium of the heart"),
    ],
)
def test_labels_read_as_words(label, name):
    assert readable(label) == name


@pytest.mark.parametrize(
    ("stem", "key"),
    [
        ("06_CT_abdomen", "ct"),
        ("09_MRI-FLAIR_brain", "mr"),
        ("15_X-Ray_chest", "x"),
        ("24_endoscope_colon", "endoscopy"),
        ("26_OCT_retinal", "oct"),
        ("brats_mr", "mr"),
        ("BraTS2021_01646", None),
    ],
)
def test_modality_from_names(stem, key):
    assert modality_from_words(stem) == key


def test_articles_follow_sound():
    assert [article(w) for w in ("axial", "MR", "X-ray", "CT", "PET", "coronal")] == [
        "an",
        "an",
        "an",
        "a",
        "a",
        "a",
    ]


# -- wordings -------------------------------------------------------------------------------


def test_every_wording_is_recognised_as_its_task():
    for template in text.VG_QUESTIONS:
        assert task_of(template.format(the="the liver")) == "VG", template
    for template in text.ROC_QUESTIONS:
        assert task_of(template.format(region=REGION)) == "RO", template
    for template in text.RC_QUESTIONS:
        assert task_of(template.format(region=REGION)) == "GC", template
    for question in text.MIA_QUESTIONS:
        assert task_of(question) == "MII", question


def test_first_wordings_are_the_apps():
    assert text.VG_QUESTIONS[0].format(the="the left hip") == grounding_question("left hip")
    assert text.ROC_QUESTIONS[0].format(region=REGION) == referring_question(REGION)
    assert text.RC_QUESTIONS[0].format(region=REGION) == caption_question(REGION)
    assert text.MIA_QUESTIONS[0] == analysis_question()


def _facts(*regions, absent=("spleen",), plane="axial"):
    return text.Facts("ct_00--d--c--z_0001.png", "ct", plane, None, 200, 100, regions, absent)


def _region(label, *boxes, instance=0):
    union = PixelBox(
        min(b.x1 for b in boxes),
        min(b.y1 for b in boxes),
        max(b.x2 for b in boxes),
        max(b.y2 for b in boxes),
    )
    return Region(label, instance, tuple(boxes), union, sum(b.area for b in boxes))


def test_test_turns_speak_med_grit():
    hips = [
        _region("hip_left", PixelBox(10, 60, 30, 90)),
        _region("hip_left", PixelBox(150, 60, 190, 95), instance=1),
    ]
    liver = _region("liver", PixelBox(20, 10, 90, 50))
    turns = text.test_turns(_facts(*hips, liver), random.Random(0), negative_rate=1.0)

    vg = {t.question: t.answer for t in turns["VG"]}
    assert vg[grounding_question("left hip")] == (
        "The left hip is located at "
        "<ref>left hip</ref><box>(50,600),(150,900)</box><box>(750,600),(950,950)</box>."
    )
    assert vg[grounding_question("spleen")] == "There is no spleen in this image."
    roc = {t.question: t.answer for t in turns["RO"]}
    assert roc[referring_question("<box>(100,100),(450,500)</box>")] == "liver"
    assert len(turns["RO"]) == 3 and len(turns["GC"]) == 3
    rc = {t.question: t.answer for t in turns["GC"]}
    assert rc[caption_question("<box>(100,100),(450,500)</box>")] == (
        "This region contains the liver, in the upper left part of the image."
    )
    (mia,) = turns["MII"]
    assert mia.answer.startswith("This is an axial CT slice. It shows the liver and the left hip.")


def test_one_box_with_two_names_is_not_asked_what_it_is():
    box = PixelBox(10, 10, 60, 60)
    turns = text.test_turns(
        _facts(_region("lung", box), _region("COVID-19+infection", box)), random.Random(0), 0.0
    )
    assert turns["RO"] == []
    (rc,) = turns["GC"]
    assert "the lung and the COVID-19 infection" in rc.answer


@pytest.mark.parametrize(
    ("box", "words"),
    [
        (PixelBox(0, 0, 20, 20), "upper left part"),
        (PixelBox(90, 40, 110, 60), "centre"),
        (PixelBox(170, 80, 200, 100), "lower right part"),
        (PixelBox(90, 0, 110, 10), "upper part"),
    ],
)
def test_position_words_are_image_thirds(box, words):
    assert text.position_words(box, 200, 100) == words


def test_training_turns_vary_with_the_generator():
    facts = _facts(_region("liver", PixelBox(20, 10, 90, 50)))
    drawn = {
        tuple(t.question for t in text.train_turns(facts, random.Random(n), 0.5)) for n in range(20)
    }
    assert len(drawn) > 5


# -- boxes ----------------------------------------------------------------------------------


def test_components_are_8_connected_and_filtered_by_size():
    mask = np.zeros((20, 30), dtype=bool)
    mask[2:6, 2:6] = True  # 16 px
    mask[6, 6] = True  # touches the block diagonally: same component
    mask[10:12, 20:22] = True  # 4 px: below the minimum
    mask[15:19, 10:25] = True
    found = components(mask, min_px=10)
    assert [box for box, _ in found] == [PixelBox(2, 2, 7, 7), PixelBox(10, 15, 25, 19)]
    assert [count for _, count in found] == [17, 60]
    region = region_of("x", 0, mask, min_px=10)
    assert region.union == PixelBox(2, 2, 25, 19) and region.pixels == 77


@dataclass(frozen=True)
class _Mask:
    label: str
    instance: int
    pixels: np.ndarray


def test_touching_masks_keep_their_own_boxes_and_overlapping_ones_all_their_pixels():
    left = np.zeros((10, 10), dtype=bool)
    left[2:8, 0:5] = True
    right = np.zeros((10, 10), dtype=bool)
    right[2:8, 5:10] = True
    both = left | right
    apart = regions_of([_Mask("a", 0, left), _Mask("a", 1, right)], min_px=1)
    assert [r.union for r in apart] == [PixelBox(0, 2, 5, 8), PixelBox(5, 2, 10, 8)]
    overlapping = regions_of([_Mask("kidney", 0, both), _Mask("left kidney", 0, left)], 1)
    assert [r.union for r in overlapping] == [PixelBox(0, 2, 10, 8), PixelBox(0, 2, 5, 8)]


# -- sources and split ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("folder", "kind"),
    [
        ("sammed2d_demo", "sammed2d"),
        ("biomedparse_demo", "masks2d"),
        ("totalseg", "nifti"),
        ("brats_mr", "nifti"),
    ],
)
def test_kinds_are_detected(folder, kind):
    assert parse_source(str(shared(folder))).kind == kind


def test_source_options_and_prefix():
    spec = parse_source(f"nifti:{shared('brats_mr')}?labels=1:edema&dataset=BraTS&modality=mr")
    assert spec.kind == "nifti" and spec.dataset == "BraTS"
    assert spec.options == {"labels": "1:edema", "dataset": "BraTS", "modality": "mr"}
    with pytest.raises(ValueError, match=r"option\(s\) \['color'\] are unknown"):
        parse_source(f"{shared('brats_mr')}?color=red")


def test_split_is_by_case_within_each_dataset():
    records = [
        ImageRecord(_facts(), dataset, f"case{n}", f"case{n}", 0)
        for dataset, cases in (("big", 10), ("small", 2), ("single", 1))
        for n in range(cases)
        for _ in range(3)  # three images per case
    ]
    test = split_patients(records, BuildSettings(test_fraction=0.2, seed=1))
    assert len([g for g in test if g.startswith("big/")]) == 2
    assert len([g for g in test if g.startswith("small/")]) == 1
    assert not any(g.startswith("single/") for g in test)
    other = split_patients(records, BuildSettings(test_fraction=0.2, seed=2))
    assert test != other or len(test) == 0
