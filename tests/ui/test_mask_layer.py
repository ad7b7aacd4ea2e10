"""The mask layer in the real window (1+3 views) on the sample CT: each shown view draws exactly
the mask's voxels of its slice in the mask's colour, and a slice streaming in elsewhere (as a
propagation sends them) repaints only the views that cross it; the masks' autosave (written on
a thread) holds what was drawn, and `save_now` after it writes the newer masks."""

from __future__ import annotations

import numpy as np
import pytest

from birdview.core.geometry import Plane
from birdview.core.mask_set import MaskSet
from birdview.core.mask_store import load_masks, masks_path
from tests.conftest import REPO
from tests.ui.helpers import open_and_wait

CT = REPO / "resources" / "samples" / "totalseg_ct"


@pytest.fixture
def window(make_main_window, qtbot):
    window = make_main_window("1+3")
    open_and_wait(qtbot, window, CT)
    assert window.session.volume is not None
    return window


def _shown(window):
    """(layer, plane, slice) of each visible view's mask layer."""
    session = window.session
    return [
        (layer, layer.parent().plane, session.slice_index(layer.parent().plane))
        for layer in window.masks.layers
        if layer.parent().isVisible()
    ]


def _check_drawn(window, colour) -> None:
    masks = window.masks.masks
    for layer, plane, index in _shown(window):
        inside = masks.label_slice(plane, index) != 0
        assert layer.rgba is not None and layer.rgba.shape[:2] == inside.shape, plane
        np.testing.assert_array_equal(layer.rgba[..., 3] > 0, inside)
        assert inside.any(), plane
        assert (layer.rgba[inside][:, :3] == colour).all(), plane


def test_streamed_slices_repaint_only_the_views_that_cross_them(window, qtbot):
    session, masks = window.session, window.masks.masks
    shown_k = 8
    block = np.zeros(masks.shape[1:], bool)
    block[150:300, 160:330] = True
    session.move_cursor((240, 220, shown_k))  # the coronal and sagittal views cross the block
    mask_id = masks.add("organ", "propagated")
    masks.put_slice(mask_id, Plane.AXIAL, shown_k, block)
    qtbot.wait(50)
    colour = masks.get(mask_id).colour
    _check_drawn(window, colour)
    axial = [layer for layer, plane, _ in _shown(window) if plane is Plane.AXIAL]
    others = [layer for layer, plane, _ in _shown(window) if plane is not Plane.AXIAL]
    assert axial and others
    before = {layer: layer.redraws for layer, _, _ in _shown(window)}
    masks.put_slice(mask_id, Plane.AXIAL, shown_k + 3, block)  # a slice not shown axially
    qtbot.wait(50)
    assert all(layer.redraws == before[layer] for layer in axial)
    assert all(layer.redraws == before[layer] + 1 for layer in others)
    _check_drawn(window, colour)
    masks.put_slice(mask_id, Plane.AXIAL, shown_k, block & ~np.eye(*block.shape, dtype=bool))
    qtbot.wait(50)
    assert all(layer.redraws == before[layer] + 1 for layer in axial)
    _check_drawn(window, colour)
    masks.set_colour(mask_id, (10, 200, 30))  # same voxels, new colour: every view repaints
    qtbot.wait(50)
    _check_drawn(window, (10, 200, 30))


def test_the_autosave_writes_the_masks_and_save_now_writes_the_latest(window, qtbot):
    controls, masks = window.masks, window.masks.masks
    path = masks_path(masks.study, controls._session_dir)
    block = np.zeros(masks.shape[1:], bool)
    block[150:300, 160:330] = True
    mask_id = masks.add("organ", "brush")
    masks.put_slice(mask_id, Plane.AXIAL, 5, block)
    qtbot.waitUntil(path.exists, timeout=5000)  # written 0.5 s after the last change

    def saved() -> np.ndarray:
        read = MaskSet()
        read.reset(masks.study, masks.shape)
        assert load_masks(masks.study, controls._session_dir, read)
        return read.entries[0].data

    qtbot.waitUntil(lambda: np.array_equal(saved(), masks.get(mask_id).data), timeout=5000)
    masks.put_slice(mask_id, Plane.AXIAL, 6, block)
    controls._save_timer.timeout.emit()  # an autosave of this edit starts on its thread...
    masks.put_slice(mask_id, Plane.AXIAL, 7, block)
    controls.save_now()  # ...and this write of the newer masks waits for it
    np.testing.assert_array_equal(saved(), masks.get(mask_id).data)
    assert masks.get(mask_id).data[5:8].any(axis=(1, 2)).all()
