"""Side by side in the real main window: a second series of the study (every third slice of the
upper sample CT, re-filed as its own series: 6 mm apart and shorter) opens from the series
browser's context menu beside the first; scrolling either one shows in the other the slice
nearest in patient position (mm, not index), and both draw the crosshair at the linked point."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from birdview.core import geometry
from birdview.core.geometry import Plane
from birdview.core.resources import resources_dir, sample_ct_dir
from tests.subseries import write_subseries
from tests.ui.helpers import click, open_and_wait


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    shutil.copytree(sample_ct_dir(), root / "a")
    write_subseries(sample_ct_dir(), root / "b", range(8, 20, 3), "upper every 3rd")
    return root


def _item_of(window, entry):
    tree = window.series_browser.tree
    for item in _walk(tree.invisibleRootItem()):
        if item.data(0, Qt.ItemDataRole.UserRole) is entry:
            return item
    raise AssertionError("series not in the browser")


def _walk(item):
    for n in range(item.childCount()):
        yield item.child(n)
        yield from _walk(item.child(n))


@pytest.fixture
def window(make_main_window, qtbot, study):
    window = make_main_window()
    open_and_wait(qtbot, window, study)
    entries = window.series_browser.entries()
    assert len(entries) == 2
    full = next(e for e in entries if e.n_slices == 20)
    if window.session.entry is not full:
        with qtbot.waitSignal(window.loader.loaded, timeout=20000):
            window.series_browser.series_requested.emit(full)
    other = next(e for e in entries if e is not full)
    menu = window.review.menu_for(_item_of(window, other))
    (action,) = [a for a in menu.actions() if a.text() == "Open beside for comparison"]
    with qtbot.waitSignal(window.review.compare.loader.loaded, timeout=20000):
        action.trigger()
    return window


def _z_mm(session) -> float:
    return geometry.slice_position_mm(session.volume, Plane.AXIAL, session.slice_index(Plane.AXIAL))


def test_opens_beside_with_crosshairs(window, qtbot) -> None:
    compare = window.review.compare
    assert compare.isVisible()
    assert compare.session.volume.shape[0] == 4
    assert compare.view.plane is Plane.AXIAL
    assert window.view_layout.main_view.show_crosshair and compare.view.show_crosshair
    # The panes sit side by side: the second right of the main view.
    main = window.view_layout.main_view
    assert (
        compare.mapTo(window, QPoint(0, 0)).x() >= main.mapTo(window, QPoint(main.width(), 0)).x()
    )
    assert "upper every 3rd" in compare.title.text()


def test_scrolling_the_first_shows_the_nearest_slice_by_position(window, qtbot) -> None:
    a, b = window.session, window.review.compare.session
    positions_b = np.array([geometry.slice_position_mm(b.volume, Plane.AXIAL, k) for k in range(4)])
    main = window.view_layout.main_view
    main.setFocus()
    qtbot.keyClick(main, Qt.Key.Key_Home)  # the most cranial slice
    seen_inside = seen_outside = other_index = 0
    for _ in range(20):
        other_index += a.slice_index(Plane.AXIAL) != b.slice_index(Plane.AXIAL)
        gap = abs(_z_mm(b) - _z_mm(a))
        assert gap == pytest.approx(np.abs(positions_b - _z_mm(a)).min(), abs=1e-6)
        if positions_b.min() - 3 <= _z_mm(a) <= positions_b.max() + 3:
            assert gap <= 3.0 + 1e-6  # half of B's 6 mm
            assert "Linked by position" in window.review.compare.link_label.text()
            seen_inside += 1
        else:
            assert "Outside this series" in window.review.compare.link_label.text()
            seen_outside += 1
        qtbot.keyClick(main, Qt.Key.Key_Down)
    assert seen_inside >= 10 and seen_outside >= 5
    # Not by index: mostly A's slice index and B's differ (B has 4 slices, A 20).
    assert other_index >= 15


def test_scrolling_the_second_moves_the_first_to_the_same_mm(window, qtbot) -> None:
    a, b = window.session, window.review.compare.session
    view = window.review.compare.view
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Home)
    for _ in range(4):
        # B's slices are some of A's own: A lands on exactly the same patient z.
        assert _z_mm(a) == pytest.approx(_z_mm(b), abs=1e-3)
        qtbot.keyClick(view, Qt.Key.Key_Down)


def test_crosshair_is_at_the_same_patient_point(window, qtbot) -> None:
    main = window.view_layout.main_view
    click(main.viewport(), QPoint(main.viewport().width() // 3, main.viewport().height() // 3))
    a, b = window.session, window.review.compare.session
    lps_a = a.volume.index_to_lps(a.cursor_ijk)
    lps_b = b.volume.index_to_lps(b.cursor_ijk)
    pixel_mm = a.volume.spacing_mm[0]
    assert np.all(np.abs(lps_a[:2] - lps_b[:2]) <= pixel_mm / 2 + 1e-6)  # in-plane x, y
    # On screen both crosshairs sit on the same pixel of their images (same in-plane grid).
    view_b = window.review.compare.view
    on_a = main.viewport_to_image(main._cursor_in_viewport())
    on_b = view_b.viewport_to_image(view_b._cursor_in_viewport())
    assert np.allclose(on_a, on_b, atol=1.0), (on_a, on_b)


def test_slab_and_presenter_reach_the_second_series(window, qtbot) -> None:
    compare = window.review.compare
    window.review.slab.set_slab("mip", 12)
    assert compare.view.overlay().bottom_left[0] == "MIP 12.0 mm"
    window.action_registry.presenter_action.trigger()
    try:
        assert compare.view.presenter
        assert not compare.view.overlay().top_left  # no patient identity
    finally:
        window.set_presenter(False)


def test_closing_and_another_study(window, qtbot) -> None:
    compare = window.review.compare
    open_and_wait(qtbot, window, resources_dir() / "samples" / "dcm4che_mr")
    assert not compare.isVisible() and compare.session.volume is None
    assert not window.view_layout.main_view.show_crosshair  # 1×1 without a second series


def test_view_menu_closes_the_second_series(window, qtbot) -> None:
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    texts = [a.text() for a in view_menu.actions()]
    assert "Play cine" in texts
    (close,) = [a for a in view_menu.actions() if a.text() == "Close side-by-side"]
    close.trigger()
    assert not window.review.compare.isVisible()
    assert window.review.compare.session.volume is None


def test_a_prior_from_another_folder(make_main_window, qtbot, study) -> None:
    window = make_main_window()
    open_and_wait(qtbot, window, study / "a")  # the catalog holds only the first series
    compare = window.review.compare
    with qtbot.waitSignal(compare.loader.loaded, timeout=20000):
        compare.open_path(str(study / "b"))
    assert compare.session.volume.shape[0] == 4
    assert len(window.session.catalog.entries) == 1  # the main window's study is unchanged
    window.session.set_slice(Plane.AXIAL, 14)
    assert _z_mm(compare.session) == pytest.approx(_z_mm(window.session), abs=1e-3)
    # Another scan (the wrist MR): matched by scanner position, and said so.
    with qtbot.waitSignal(compare.loader.loaded, timeout=20000):
        compare.open_path(str(resources_dir() / "samples" / "dcm4che_mr"))
    text = compare.link_label.text()
    assert "other frame of reference" in text or "another patient" in text, text
    assert "Outside this series" in text or "not parallel" in text, text


def test_cine_plays_both_series_in_step(window, qtbot) -> None:
    a, b = window.session, window.review.compare.session
    positions_b = np.array([geometry.slice_position_mm(b.volume, Plane.AXIAL, k) for k in range(4)])
    cine = window.review.cine
    cine.set_fps(20)
    seen = set()
    for _ in range(6):
        cine.play()
        qtbot.wait(150)
        cine.pause()
        seen.add(a.slice_index(Plane.AXIAL))
        gap = abs(_z_mm(b) - _z_mm(a))
        assert gap == pytest.approx(np.abs(positions_b - _z_mm(a)).min(), abs=1e-6)
    assert len(seen) >= 3  # it really played
