"""AskSpec and SweepSpec: one declaration of an ask's options, checked once, picklable."""

from __future__ import annotations

import pickle
import re

import pytest

from birdview.core.ask import AskSpec, SweepSpec, ask_spec, checked, sweep_spec
from birdview.core.box import Box
from birdview.core.geometry import Plane
from birdview.core.prompts import MAX_QUESTION_CHARS, Task


def test_the_defaults_ask_about_the_first_axial_slice_and_stream():
    spec = AskSpec("Where is the liver?")

    assert (spec.task, spec.region, spec.max_new_tokens) == (None, None, None)
    assert (spec.plane, spec.slice_index, spec.stream) == (Plane.AXIAL, 0, True)


def test_codes_and_names_become_enums():
    spec = AskSpec("", task="RO", plane="coronal", slice_index=2)

    assert spec.task is Task.ROC and spec.plane is Plane.CORONAL
    assert SweepSpec("Where?", "sagittal").plane is Plane.SAGITTAL


def test_specs_survive_a_pickle_unchanged():
    region = Box("coronal", 4, 1.0, 2.0, 3.0, 4.0, label="lesion")
    ask = AskSpec(
        "What is at the {region}?",
        task=Task.RC,
        region=region,
        plane="coronal",
        slice_index=4,
        max_new_tokens=7,
        stream=False,
    )
    sweep = SweepSpec("Where is the liver?", "axial", batch_size=3, max_new_tokens=5)

    for spec in (ask, sweep):
        again = pickle.loads(pickle.dumps(spec))
        assert again == spec and type(again) is type(spec)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"question": "x" * (MAX_QUESTION_CHARS + 1)},
            ValueError,
            "Unable to ask as the question is 4,001 characters long and the limit is 4,000; "
            "shorten it, or ask about one finding at a time",
        ),
        ({"slice_index": -1}, ValueError, "Unable to ask as the slice index -1 is negative"),
        ({"slice_index": 1.5}, TypeError, "Unable to ask as the slice index 1.5 is not an integer"),
        (
            {"max_new_tokens": 0},
            ValueError,
            "Unable to ask as max_new_tokens 0 is below 1; leave it unset for the default budget",
        ),
        ({"task": "XX"}, ValueError, "'XX' is not a valid Task"),
        ({"plane": "oblique"}, ValueError, "'oblique' is not a valid Plane"),
        (
            {"region": (1, 2, 3, 4)},
            TypeError,
            "Unable to ask as the region (1, 2, 3, 4) is not a Box",
        ),
    ],
)
def test_a_bad_ask_spec_is_refused_with_one_line(options, error, message):
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        AskSpec(**{"question": "Where?", **options})


def test_a_bad_sweep_spec_is_refused_with_the_engines_words():
    with pytest.raises(ValueError, match=r"^Unable to sweep as batch_size 0 is below 1$"):
        SweepSpec("Where?", "axial", batch_size=0)
    with pytest.raises(ValueError, match="characters long and the limit is"):
        SweepSpec("x" * (MAX_QUESTION_CHARS + 1), "axial")


def test_the_keyword_form_builds_the_same_spec():
    spec = AskSpec("Where?", slice_index=3, max_new_tokens=4)

    assert ask_spec("Where?", slice_index=3, max_new_tokens=4) == spec
    assert ask_spec(spec) is spec
    assert sweep_spec("Where?", "axial", batch_size=2) == SweepSpec("Where?", "axial", 2)
    with pytest.raises(TypeError, match="slice_index came beside a spec"):
        ask_spec(spec, slice_index=1)
    with pytest.raises(TypeError, match="plane came beside a spec"):
        sweep_spec(SweepSpec("Where?", "axial"), "coronal")


def test_checked_refuses_what_skipped_the_checks():
    """Unpickling does not run ``__post_init__``: what crosses a pipe is checked again."""
    forged = AskSpec("Where?")
    object.__setattr__(forged, "slice_index", -2)

    with pytest.raises(ValueError, match="slice index -2 is negative"):
        checked(forged, AskSpec)
    with pytest.raises(TypeError, match="the request holds a str"):
        checked("Where?", AskSpec)
    assert checked(AskSpec("Where?"), AskSpec) == AskSpec("Where?")
