"""`SliceView` and `ViewLayout` on a real CT volume: scrolling, window/level, zoom, linking."""

from __future__ import annotations

import gc
import statistics
import time

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from birdview.core.display import Window, default_window
from birdview.core.geometry import Plane, pixel_size_mm, slice_position_mm
from birdview.core.session import Session
from birdview.core.volume import Volume
from birdview.ui import slice_view
from birdview.ui.slice_view import SliceView, to_qimage
from birdview.ui.view_layout import ViewLayout
from tests.ui.helpers import click, drag, load_nifti_canonical, wheel


@pytest.fixture(scope="module")
def ct():
    return load_nifti_canonical()


@pytest.fixture
def session(ct) -> Session:
    session = Session()
    volume, entry, plane = ct
    session.open_volume(volume, entry, plane)
    return session


@pytest.fixture
def view(qtbot, session) -> SliceView:
    view = SliceView(session, Plane.AXIAL)
    qtbot.addWidget(view)
    view.resize(500, 500)
    view.show()
    qtbot.waitExposed(view)
    view.setFocus()
    return view


def _slice_line(view: SliceView) -> str:
    return view.overlay().bottom_left[0]


def _z_mm(session: Session) -> float:
    """The patient z (superior) of the axial slice on screen."""
    return slice_position_mm(session.volume, Plane.AXIAL, session.slice_index(Plane.AXIAL))


def test_shows_the_session_slice_and_overlays(view, session) -> None:
    count = session.slice_count(Plane.AXIAL)
    index = session.slice_index(Plane.AXIAL)
    overlay = view.overlay()
    # A NIfTI has no Instance Number: the place in reading order (from the head), not "Im".
    assert overlay.bottom_left[0] == f"Slice {count - index}/{count}"
    assert overlay.bottom_left[1].startswith("Pos ") and overlay.bottom_left[1].endswith(" mm")
    assert overlay.bottom_right[0] == session.window.label()
    assert overlay.bottom_right[1].startswith("Zoom ")
    assert overlay.letters == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert not view._item.pixmap().isNull()


def test_wheel_and_keys_scroll_from_head_to_feet(qtbot, view, session) -> None:
    """As in every PACS: wheel towards the user, ↓, → and PgDn go towards the feet; Home is
    the most cranial slice. The session's index (k runs to the head) goes down meanwhile."""
    centre = view.viewport().rect().center()
    count = session.slice_count(Plane.AXIAL)
    start = session.slice_index(Plane.AXIAL)
    z_start = _z_mm(session)
    wheel(view.viewport(), centre, -120)
    assert session.slice_index(Plane.AXIAL) == start - 1 and _z_mm(session) < z_start
    assert _slice_line(view) == f"Slice {count - start + 1}/{count}"
    wheel(view.viewport(), centre, 120)
    assert session.slice_index(Plane.AXIAL) == start
    qtbot.keyClick(view, Qt.Key.Key_Down)
    assert session.slice_index(Plane.AXIAL) == start - 1
    qtbot.keyClick(view, Qt.Key.Key_Up)
    qtbot.keyClick(view, Qt.Key.Key_Left)
    assert session.slice_index(Plane.AXIAL) == start + 1
    qtbot.keyClick(view, Qt.Key.Key_Right)
    qtbot.keyClick(view, Qt.Key.Key_PageDown)
    assert session.slice_index(Plane.AXIAL) == start - 10
    qtbot.keyClick(view, Qt.Key.Key_PageUp)
    assert session.slice_index(Plane.AXIAL) == start
    qtbot.keyClick(view, Qt.Key.Key_End)
    assert session.slice_index(Plane.AXIAL) == 0  # the most caudal slice
    assert _slice_line(view) == f"Slice {count}/{count}"
    qtbot.keyClick(view, Qt.Key.Key_Home)
    assert session.slice_index(Plane.AXIAL) == count - 1
    assert _slice_line(view) == f"Slice 1/{count}"
    top_z = max(slice_position_mm(session.volume, Plane.AXIAL, k) for k in range(count))
    assert _z_mm(session) == pytest.approx(top_z)  # "Slice 1" is the most cranial


def test_session_change_redraws_the_view(view, session) -> None:
    before = view._buffer.copy()
    session.set_slice(Plane.AXIAL, 0)  # index 0: the most caudal slice, shown last
    count = session.slice_count(Plane.AXIAL)
    assert _slice_line(view) == f"Slice {count}/{count}"
    assert not np.array_equal(before, view._buffer)
    session.set_window(Window(0, 100))
    assert view.overlay().bottom_right[0] == "W 100 / L 0"


def test_left_drag_changes_window_and_label(qtbot, view, session) -> None:
    start = session.window
    centre = view.viewport().rect().center()
    drag(view.viewport(), centre, centre + QPoint(60, 0), Qt.MouseButton.LeftButton)
    wider = session.window
    assert wider.width > start.width and wider.center == pytest.approx(start.center)
    drag(view.viewport(), centre, centre + QPoint(0, 40), Qt.MouseButton.LeftButton)
    assert session.window.center > wider.center
    assert session.window.width == pytest.approx(wider.width)
    assert view.overlay().bottom_right[0] == session.window.label()
    cursor_before = session.cursor_ijk
    assert session.cursor_ijk == cursor_before  # a drag is not a click


def test_click_moves_cursor_and_linked_views_follow(qtbot, session) -> None:
    session.set_layout("1+3")
    layout = ViewLayout(session)
    qtbot.addWidget(layout)
    layout.resize(900, 700)
    layout.show()
    qtbot.waitExposed(layout)
    axial = layout.small_views[Plane.AXIAL]
    coronal = layout.small_views[Plane.CORONAL]
    sagittal = layout.small_views[Plane.SAGITTAL]
    assert all(v.show_crosshair for v in layout.views())
    before = (session.slice_index(Plane.CORONAL), session.slice_index(Plane.SAGITTAL))
    main = layout.main_view
    assert main.plane is Plane.AXIAL
    target = main.mapFromScene(main._item.sceneBoundingRect().topLeft()) + QPoint(25, 30)
    click(main.viewport(), target)
    after = (session.slice_index(Plane.CORONAL), session.slice_index(Plane.SAGITTAL))
    assert after != before and after[0] < before[0] and after[1] < before[1]
    # reformatted planes read front to back and right to left: the index order here
    assert (
        coronal.overlay().bottom_left[0] == f"{after[0] + 1}/{session.slice_count(Plane.CORONAL)}"
    )
    assert (
        sagittal.overlay().bottom_left[0] == f"{after[1] + 1}/{session.slice_count(Plane.SAGITTAL)}"
    )
    # the crosshair of the other views sits on the clicked voxel
    point = main._cursor_in_viewport()
    assert abs(point.x() - target.x()) <= main.zoom() and abs(point.y() - target.y()) <= main.zoom()
    # the small views say the same, shorter: "15/30" for "Slice 15/30"
    assert axial.overlay().bottom_left == [main.overlay().bottom_left[0].removeprefix("Slice ")]
    # double-click a small view: it becomes the main plane
    qtbot.mouseDClick(
        coronal.viewport(), Qt.MouseButton.LeftButton, pos=coronal.viewport().rect().center()
    )
    assert session.main_plane is Plane.CORONAL and main.plane is Plane.CORONAL
    session.set_layout("1x1")
    assert layout.views() == [main] and not main.show_crosshair


def test_zoom_pan_fit_reset(qtbot, view, session) -> None:
    fitted = view.zoom()
    centre = view.viewport().rect().center()
    wheel(view.viewport(), centre, 240, Qt.KeyboardModifier.ControlModifier)
    assert view.zoom() > fitted * 1.2
    assert session.slice_index(Plane.AXIAL) == session.slice_count(Plane.AXIAL) // 2  # no scroll
    zoomed = view.zoom()
    drag(view.viewport(), centre, centre + QPoint(0, -50), Qt.MouseButton.RightButton)
    assert view.zoom() > zoomed
    before = view.mapToScene(centre)
    drag(view.viewport(), centre, centre + QPoint(40, 20), Qt.MouseButton.MiddleButton)
    after = view.mapToScene(centre)
    assert after.x() < before.x() and after.y() < before.y()
    qtbot.keyClick(view, Qt.Key.Key_F)
    assert view.zoom() == pytest.approx(fitted, rel=1e-3)
    session.set_window(Window(0, 50))
    wheel(view.viewport(), centre, 240, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(view, Qt.Key.Key_R)
    assert view.zoom() == pytest.approx(fitted, rel=1e-3)
    assert session.window == default_window(session.volume)


def test_anisotropic_pixels_keep_their_aspect(qtbot, ct) -> None:
    volume = ct[0].with_changes(spacing_mm=(0.5, 0.5, 4.0))
    session = Session()
    session.open_volume(volume)
    view = SliceView(session, Plane.CORONAL)
    qtbot.addWidget(view)
    view.resize(400, 400)
    view.show()
    qtbot.waitExposed(view)
    rect = view._item.sceneBoundingRect()
    rows, cols = volume.shape[0], volume.shape[2]
    w_mm, h_mm = pixel_size_mm(volume, Plane.CORONAL)
    assert rect.width() == pytest.approx(cols * w_mm) and rect.height() == pytest.approx(
        rows * h_mm
    )
    assert view.overlay().letters == {"left": "R", "right": "L", "top": "S", "bottom": "I"}


def test_rgb_image_shows_in_colour(qtbot) -> None:
    rgb = np.zeros((1, 20, 30, 3), np.uint8)
    rgb[..., 0] = 200
    session = Session()
    session.open_volume(Volume(rgb, modality="XC", has_geometry=False))
    view = SliceView(session, Plane.AXIAL)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    image = view._item.pixmap().toImage()
    assert (image.width(), image.height()) == (30, 20)
    assert image.pixelColor(5, 5).red() == 200 and image.pixelColor(5, 5).green() == 0
    assert view.overlay().letters is None


def test_slice_change_is_fast_at_512(qtbot) -> None:
    rng = np.random.default_rng(0)
    voxels = rng.integers(-1024, 2000, size=(64, 512, 512), dtype=np.int16)
    session = Session()
    session.open_volume(Volume(voxels, modality="CT", window=(40.0, 400.0)))
    view = SliceView(session, Plane.AXIAL)
    qtbot.addWidget(view)
    view.resize(600, 600)
    view.show()
    qtbot.waitExposed(view)
    times = []
    for index in range(40):
        started = time.perf_counter()
        session.set_slice(Plane.AXIAL, index)
        times.append(time.perf_counter() - started)
    median_ms = statistics.median(times) * 1000
    assert median_ms < 15, f"slice change took {median_ms:.1f} ms (median)"


def test_to_qimage_shares_the_buffer() -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    image, buffer = to_qimage(grey)
    assert (image.width(), image.height(), image.bytesPerLine()) == (4, 3, 4)
    assert image.pixelColor(3, 2).red() == 11
    assert buffer is grey


def test_a_new_volume_never_shows_the_render_of_a_collected_one(qtbot, monkeypatch) -> None:
    """`refresh` redraws "only what changed", judged by `Volume.token`. CPython reuses an
    ``id()`` once its object is collected, so a new volume of the same shape, window and
    slice could take the old one's and keep its picture; here every id is the same, as if
    the address had come back."""
    monkeypatch.setattr(slice_view, "id", lambda _: 1, raising=False)

    def make(level: int) -> Volume:
        return Volume(np.full((3, 20, 30), level, np.int16), modality="CT", window=(100.0, 200.0))

    session = Session()
    session.open_volume(make(0))  # 0 is below the window: black
    view = SliceView(session, Plane.AXIAL)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    assert view._item.pixmap().toImage().pixelColor(5, 5).red() == 0
    signals = session.events.volume, session.events.window, session.events.cursor_ijk
    for signal in signals:  # the view is not told; it finds out on its next refresh
        signal.block()
    session.close_volume()
    gc.collect()
    session.open_volume(make(200))  # 200 is above the window: white
    for signal in signals:
        signal.unblock()

    view.refresh()

    assert view._item.pixmap().toImage().pixelColor(5, 5).red() == 255
