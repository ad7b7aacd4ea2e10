"""Reading real series in the window: a multi-frame cine scrolls frame by frame, and a series
with a gap is flagged where the user picks it."""

from __future__ import annotations

import shutil

import numpy as np
from PySide6.QtCore import Qt

from birdview.core.display import apply_window
from birdview.core.geometry import Plane
from tests.conftest import shared
from tests.ui.helpers import open_and_wait

CINE = (
    "dicom_multiframe",
    "encapsulated",
    "multi-frame",
    "IM00001.fragmented_no_bot_jpeg_baseline.50.dcm",
)


def test_cine_frames_scroll_one_by_one(qtbot, make_main_window) -> None:
    window = make_main_window()
    open_and_wait(qtbot, window, shared(*CINE))
    session, view = window.session, window.view_layout.main_view
    volume = session.volume
    assert volume.is_rgb and volume.shape == (8, 240, 320)
    qtbot.keyClick(view, Qt.Key.Key_Home)
    shown = []
    for frame in range(8):
        assert session.slice_index(Plane.AXIAL) == frame
        # frames of one file share its Instance Number: the place in the cine, not "Im"
        assert view.overlay().bottom_left[0] == f"Slice {frame + 1}/8"
        expected = apply_window(np.asarray(volume.voxels[frame]), session.window)
        np.testing.assert_array_equal(view._buffer, expected)
        shown.append(view._buffer.copy())
        qtbot.keyClick(view, Qt.Key.Key_Down)
    assert session.slice_index(Plane.AXIAL) == 7  # stops at the last frame
    pairs = zip(shown[:-1], shown[1:], strict=True)
    assert all(not np.array_equal(a, b) for a, b in pairs)  # a moving cine


def test_series_with_a_gap_is_flagged_in_the_browser(qtbot, make_main_window, tmp_path) -> None:
    for path in shared("dcm4che_mr").glob("MR*.dcm"):
        if path.name != "MR08.dcm":
            shutil.copy(path, tmp_path / path.name)
    window = make_main_window()
    open_and_wait(qtbot, window, tmp_path)
    (item,) = window.series_browser._items.values()
    assert "missing" in item.toolTip(0)
    assert not item.icon(1).isNull()
    assert "missing" in window.statusBar().currentMessage()
