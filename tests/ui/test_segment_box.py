"""*Segment box* in the real window: the drawn box goes to a tiny random SAM checkpoint in the
real worker, the mask lands on the box's slice in the study's mask set, and the status bar gives
its volume in mL at once and its axes and HU (computed in a thread) when ready; numbers of a mask
edited meanwhile are dropped."""

from __future__ import annotations

import numpy as np
import pytest

from birdview.core.box import Box
from birdview.core.geometry import Plane
from birdview.core.masks import measure
from birdview.core.model_input import render_for_model, volume_intensity_range
from tests.conftest import REPO
from tests.inference.tiny_sam import build_tiny_sam
from tests.ui.segment_window import open_segment_window, wait_for

SAMPLE_CT = REPO / "resources" / "samples" / "totalseg_ct"
SLICE = 8
EDGES = (150.0, 160.0, 330.0, 300.0)


@pytest.fixture(scope="module")
def window(qapp, tmp_path_factory):
    folder = tmp_path_factory.mktemp("segment_box")
    window = open_segment_window(folder, build_tiny_sam("sam", folder / "sam", seed=0), SAMPLE_CT)
    yield window
    window.close()


def test_segment_box_without_a_box_says_what_to_do(window):
    window.assistant.set_user_box(None)
    assert not window.segment.segment_box()
    assert "draw a box on a slice first" in window.status.currentMessage()


def test_segment_box_shows_the_mask_on_its_slice_and_its_volume(window):
    volume = window.session.volume
    box = Box(Plane.AXIAL, SLICE, *EDGES, label="drawn")
    window.assistant.set_user_box(box)
    window.segment.segment_action.trigger()
    wait_for(lambda: window.segment.last_measures is not None, 120)
    entry = window.masks.masks.selected_entry
    assert entry is not None and (entry.name, entry.source) == ("drawn", "SAM box")
    assert window.labels.overlay.label_map is None  # the mask set is its own layer
    shown = entry.data > 0
    assert shown[SLICE].any() and not np.delete(shown, SLICE, axis=0).any()
    # The same request straight through the client gives the same mask.
    image = render_for_model(
        volume, Plane.AXIAL, SLICE, intensity_range=volume_intensity_range(volume)
    )
    direct = window.bridge.client.segment(image, box).result(60).mask.unpack()
    np.testing.assert_array_equal(shown[SLICE], direct)
    message = window.status.currentMessage()
    expected_ml = direct.sum() * np.prod(volume.spacing_mm) / 1000
    assert f"Segmented on axial slice {SLICE}: {expected_ml:.2f} mL" in message
    assert "axial long axis" in message and "HU" in message
    # The thread's numbers are the entry's: the panel shows them without a second pass.
    assert entry.cached_measures() is window.segment.last_measures
    assert window.segment.last_measures == measure(shown, volume)
    panel = window.mask_panel
    row = [e.id for e in window.masks.masks].index(entry.id)
    wait_for(lambda: panel.row_text(row)[2] != "…", 30)
    assert panel.row_text(row)[2] == f"{expected_ml:.2f}"


def test_numbers_of_a_mask_edited_while_they_were_computed_are_dropped(window):
    masks, segment, volume = window.masks.masks, window.segment, window.session.volume
    segment.last_measures = None
    window.assistant.set_user_box(Box(Plane.AXIAL, SLICE, *EDGES, label="edited"))
    stroke = np.zeros(volume.shape[1:], dtype=bool)
    stroke[20:60, 20:60] = True
    painted = []

    def paint_at_once(message: str) -> None:
        # The count is shown and the thread has the mask's copy: edit it in this same turn,
        # before the thread's numbers can come back.
        if "(measuring…)" in message and not painted:
            painted.append(masks.paint(masks.selected, Plane.AXIAL, SLICE + 2, stroke, True))

    window.status.messageChanged.connect(paint_at_once)
    try:
        window.segment.segment_action.trigger()
        wait_for(lambda: painted and segment.measuring == 0, 120)
    finally:
        window.status.messageChanged.disconnect(paint_at_once)
    entry = masks.selected_entry
    assert entry.name == "edited" and painted == [stroke.sum()]
    assert segment.last_measures is None  # the numbers of the unedited mask were dropped
    assert "(measuring…)" in window.status.currentMessage()
    assert "long axis" not in window.status.currentMessage()
    # The panel measures the edited voxels itself (the stroke's slice included).
    panel = window.mask_panel
    wait_for(lambda: entry.cached_measures() is not None and not panel.measuring, 30)
    assert entry.cached_measures() == measure(entry.data > 0, volume)
    assert entry.cached_measures().voxels == entry.voxels > stroke.sum()
