"""Thick slab in the real main window on the sample CT: choosing MIP/MinIP/average and a
thickness in the tool bar makes every view (all three planes) show numpy's projection over
the slab, through the session's window, and name it in the corner text."""

from __future__ import annotations

import numpy as np
import pytest

from birdview.core import geometry
from birdview.core.display import apply_window
from birdview.core.geometry import Plane
from birdview.core.resources import sample_ct_dir
from tests.ui.helpers import open_and_wait

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
