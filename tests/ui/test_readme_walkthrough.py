"""The README's "first five minutes", step by step, on the bundled sample CT with the bundled
demo model, in a real window with the real worker: each question the README tells a newcomer to
ask gives the answer the README says it gives."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PySide6.QtCore import QSettings

from birdview.core import geometry, io
from birdview.core.box import Box
from birdview.core.geometry import Plane
from birdview.core.resources import demo_model_dir, sample_ct_dir
from birdview.ui.settings import Settings
from tests.conftest import REPO
from tests.ui.test_first_start import _iou
from tests.ui.test_refer_ground import last_turn, wait_for

# TotalSegmentator's values (resources/samples/totalseg_ct_labels)
SPLEEN, LIVER, PANCREAS = 1, 5, 7
WALKTHROUGH = REPO / "README.md"


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    path = sample_ct_dir().parent / "totalseg_ct_labels" / "example_seg_dicom.nii.gz"
    (entry,) = io.scan(path).entries
    return np.asarray(geometry.to_canonical(io.load(entry)).voxels)


def _edges(mask: np.ndarray) -> tuple[float, float, float, float]:
    rows, cols = np.nonzero(mask)
    return float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1)


def _largest_part(mask: np.ndarray) -> tuple[float, float, float, float]:
    """The box of the largest 8-connected part, as the data builder boxes each part of a
    structure (what the demo was taught to name)."""
    from trainer.data.boxes import components

    box, _ = max(components(mask, 1), key=lambda found: found[1])
    return float(box.x1), float(box.y1), float(box.x2), float(box.y2)


@pytest.fixture(scope="module")
def window(qapp, tmp_path_factory):
    from birdview.ui.app import open_window

    folder = tmp_path_factory.mktemp("walkthrough")
    settings = Settings(QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat))
    window = open_window(None, settings=settings, session_dir=str(folder / "sessions"))
    wait_for(lambda: window.session.volume is not None)
    wait_for(lambda: window.assistant.model.state in ("ready", "error"), 120)
    assert window.assistant.model.ready, window.assistant.model.message
    assert window.assistant.model.model_dir == str(demo_model_dir())
    yield window
    window.close()


def _walkthrough() -> str:
    text = WALKTHROUGH.read_text(encoding="utf-8")
    start = text.index("### The first five minutes")
    return text[start : text.index("\n## ", start)]


def test_the_readme_asks_what_this_test_asks():
    steps = _walkthrough()
    assert "`where is the spleen?`" in steps
    assert re.search(r"\*What is this\?\*.*`liver`", steps, re.DOTALL)
    assert re.search(r"`liver`.*\*Find in volume\*.*all 20 slices, Im 267–286", steps, re.DOTALL)


def test_ask_where_the_spleen_is(window, labels):
    shown = window.session.slice_index(Plane.AXIAL)
    window.chat_panel.input.setText("where is the spleen?")
    window.chat_panel.input.returnPressed.emit()

    turn = last_turn(window)

    assert turn.state == "done" and len(turn.boxes) == 1, turn.answer
    assert turn.boxes[0].label == "spleen" and turn.boxes[0].slice_index == shown
    assert _iou(turn.boxes[0].edges_px, _edges(labels[shown] == SPLEEN)) > 0.5


def test_draw_a_box_on_the_liver_and_ask_what_it_is(window, labels):
    shown = window.session.slice_index(Plane.AXIAL)
    x1, y1, x2, y2 = _largest_part(labels[shown] == LIVER)
    window.assistant.set_user_box(Box(Plane.AXIAL, shown, x1, y1, x2, y2))
    wait_for(window.chat_panel.what_button.isEnabled)
    window.chat_panel.what_button.click()

    turn = last_turn(window)

    assert turn.state == "done" and turn.region is not None
    assert turn.answer.strip() == "liver", turn.answer


def test_find_the_liver_in_the_whole_volume(window, labels):
    window.chat_panel.input.setText("liver")
    wait_for(window.chat_panel.sweep_button.isEnabled)
    window.chat_panel.sweep_button.click()

    turn = last_turn(window)

    assert turn.state == "done" and turn.extent is not None, turn.answer
    found = sorted({box.slice_index for box in turn.boxes})
    with_liver = [k for k in range(labels.shape[0]) if (labels[k] == LIVER).any()]
    assert set(found) <= set(range(labels.shape[0])) and len(found) >= 0.9 * len(with_liver)
    assert turn.answer.startswith("Found on axial Im 267–286"), turn.answer  # as the README says
    assert found == list(range(20))


def test_find_the_pancreas_only_on_the_slices_that_have_it(window, labels):
    """The sweep shows a structure's real extent: the pancreas lies on a few slices of this
    slab only, and the model draws it there and says it is absent from the others."""
    window.chat_panel.input.setText("pancreas")
    wait_for(window.chat_panel.sweep_button.isEnabled)
    window.chat_panel.sweep_button.click()

    turn = last_turn(window)

    assert turn.state == "done", turn.error
    found = {box.slice_index for box in turn.boxes}
    with_pancreas = {k for k in range(labels.shape[0]) if (labels[k] == PANCREAS).sum() >= 16}
    assert 0 < len(with_pancreas) < labels.shape[0] // 2
    assert len(found ^ with_pancreas) <= 1, (sorted(found), sorted(with_pancreas))
    said = re.search(r"`pancreas`.*?\*Find in volume\*.*?(Im \d+–\d+)", _walkthrough(), re.DOTALL)
    assert said and turn.answer.startswith(f"Found on axial {said.group(1)}"), turn.answer
