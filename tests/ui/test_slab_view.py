"""Thick slab in the real main window on the sample CT: choosing MIP/MinIP/average and a
thickness in the tool bar makes every view (all three planes) show numpy's projection over
the slab, through the session's window, and name it in the corner text."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt

from birdview.core import geometry
from birdview.core.display import apply_window
from birdview.core.geometry import Plane
from birdview.core.measure import roi_mask
from birdview.core.resources import sample_ct_dir
from tests.ui.helpers import drag, mouse, open_and_wait

_REDUCE = {"MIP": np.max, "MinIP": np.min, "Average": np.mean}
_NORMAL = {Plane.SAGITTAL: 0, Plane.CORONAL: 1, Plane.AXIAL: 2}


@pytest.mark.parametrize("name", ["MIP", "MinIP", "Average"])
def test_every_plane_shows_the_slab_projection(make_main_window, qtbot, name) -> None:
    window = make_main_window("1+3")
    open_and_wait(qtbot, window, sample_ct_dir())
    session = window.session
    controls = window.review.slab
    controls.thickness_box.setValue(12.0)  # as the user would, in the tool bar
    controls.mode_box.setCurrentIndex(controls.mode_box.findText(name))
    volume = session.volume
    for plane, view in window.view_layout.small_views.items():
        qtbot.waitExposed(view)
        index = session.slice_index(plane)
        count = max(1, round(12.0 / volume.spacing_mm[_NORMAL[plane]]))
        first = max(index - (count - 1) // 2, 0)
        last = min(first + count - 1, geometry.slice_count(volume, plane) - 1)
        stack = [geometry.extract_slice(volume, plane, n) for n in range(first, last + 1)]
        projected = _REDUCE[name](np.stack(stack).astype(np.float32), axis=0)
        expected = apply_window(projected, session.window)
        shown = view._buffer  # the grey levels the view drew
        assert np.abs(shown.astype(int) - expected.astype(int)).max() <= 1, plane
        assert not np.array_equal(shown, apply_window(stack[len(stack) // 2], session.window))
        assert f"{name} 12.0 mm" in window.view_layout.main_view.overlay().bottom_left
    controls.set_slab("off", 12.0)
    axial = window.view_layout.main_view
    plain = geometry.extract_slice(volume, Plane.AXIAL, session.slice_index(Plane.AXIAL))
    np.testing.assert_array_equal(axial._buffer, apply_window(plain, session.window))
    assert not controls.thickness_box.isEnabled()
    assert not any("mm" in line and "Loc" not in line for line in axial.overlay().bottom_left)


def test_roi_statistics_and_the_value_under_the_mouse_follow_the_mip(make_main_window, qtbot):
    """On a 10 mm MIP the ellipse ROI drawn with the mouse reports the projection's statistics
    (numpy over the five 2 mm slices shown), named "MIP 10.0 mm", and so does the status bar's
    value under the mouse; back on the plain slice they are the slice's own again."""
    window = make_main_window("1x1")
    open_and_wait(qtbot, window, sample_ct_dir())
    session, view = window.session, window.view_layout.main_view
    volume, k = session.volume, session.slice_index(Plane.AXIAL)
    window.review.slab.set_slab("mip", 10.0)
    stack = np.stack([geometry.extract_slice(volume, Plane.AXIAL, n) for n in range(k - 2, k + 3)])
    mip = stack.max(axis=0).astype(np.float64)
    messages = []
    window.measure.message.connect(messages.append)
    window.action_registry.tool_actions["ellipse"].trigger()
    cx, cy = (int(v) for v in view.viewport_to_image(view.viewport().rect().center()))
    start, end = (
        view.image_to_viewport(x, y).toPoint() for x, y in ((cx - 40, cy - 30), (cx + 30, cy + 30))
    )
    drag(view.viewport(), start, end, Qt.MouseButton.LeftButton)
    (roi,) = window.measure.measurements.items
    values = mip[roi_mask(roi, mip.shape)]
    assert messages[-1].startswith("Ellipse ROI: ") and "MIP 10.0 mm" in messages[-1]
    assert f"Mean {values.mean():.1f} HU  SD {values.std():.1f}" in messages[-1]
    shown = view_lines(window, roi)
    assert shown[shown.index("MIP 10.0 mm") + 1].startswith(f"Mean {values.mean():.1f} HU")
    # The value under the mouse: the brightest voxel of the five behind that pixel.
    target_row, target_col = _where_mip_stands_out(mip, stack[2], (cy, cx))
    pos = view.image_to_viewport(target_col + 0.5, target_row + 0.5).toPoint()
    mouse(view.viewport(), QEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton)
    col, row = (math.floor(v) for v in view.viewport_to_image(QPointF(pos)))  # where it landed
    text = window.status.cursor_label.text()
    assert text == f"voxel ({col}, {row}, {k})  MIP 10.0 mm  {mip[row, col]:.6g} HU"
    assert mip[row, col] > stack[2][row, col] + 30  # there the MIP is not the slice
    window.review.slab.set_slab("off", 10.0)
    mouse(view.viewport(), QEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton)
    plain = float(stack[2][row, col])
    assert window.status.cursor_label.text() == f"voxel ({col}, {row}, {k})  {plain:.6g} HU"
    centre = stack[2].astype(np.float64)[roi_mask(roi, mip.shape)]
    assert view_lines(window, roi)[0].startswith("Area")
    assert f"Mean {centre.mean():.1f} HU" in " ".join(view_lines(window, roi))


def view_lines(window, roi) -> list[str]:
    """The label the main view's measurement layer draws beside ``roi``."""
    return window.measure.layers[0]._lines(roi, window.session.volume)


def _where_mip_stands_out(mip, plain, near) -> tuple[int, int]:
    """(row, col) nearest ``near`` whose 3 × 3 neighbourhood is all over 30 HU brighter in
    the MIP than in the slice (so the pixel the mouse lands on, give or take one, is too)."""
    brighter = mip - plain.astype(np.float64)
    padded = np.pad(brighter, 1, constant_values=-np.inf)
    rows, cols = brighter.shape
    least = np.min(
        [padded[dr : dr + rows, dc : dc + cols] for dr in range(3) for dc in range(3)], axis=0
    )
    found = np.argwhere(least > 30)
    nearest = found[np.argmin(np.hypot(*(found - np.asarray(near)).T))]
    return int(nearest[0]), int(nearest[1])
