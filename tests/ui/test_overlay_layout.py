"""Corner texts and orientation letters never collide or leave the view, down to the smallest
view, on the sample CT in real slice views (full and compact); at a normal size nothing is
dropped or shortened."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QRectF

from birdview.core import geometry
from birdview.core.geometry import Plane
from birdview.core.io import load, scan
from birdview.core.resources import sample_ct_dir
from birdview.core.session import Session
from birdview.ui.overlays import layout_overlay
from birdview.ui.slice_view import SliceView


@pytest.fixture(scope="module")
def ct():
    entry = scan(str(sample_ct_dir())).entries[0]
    raw = load(entry)
    return geometry.to_canonical(raw), entry, geometry.acquisition_plane(raw)


@pytest.fixture
def session(ct) -> Session:
    session = Session()
    session.open_volume(*ct)
    return session


def _placed(qtbot, session, size, compact: bool, plane=Plane.AXIAL):
    view = SliceView(session, plane, compact=compact)
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    qtbot.waitExposed(view)
    area = QRectF(view.viewport().rect())
    return view, area, layout_overlay(area, view.overlay(), view._font)


@pytest.mark.parametrize("compact", [False, True])
@pytest.mark.parametrize("size", [(120, 120), (150, 130), (240, 160), (320, 240), (700, 600)])
def test_no_two_texts_overlap_and_all_stay_inside(qtbot, session, size, compact) -> None:
    view, area, placed = _placed(qtbot, session, size, compact)
    assert placed, "at least the letters are shown"
    for n, a in enumerate(placed):
        assert area.contains(a.rect), f"{a.text!r} leaves the {size} view"
        for b in placed[n + 1 :]:
            assert not a.rect.intersects(b.rect), f"{a.text!r} and {b.text!r} collide at {size}"


def test_at_a_normal_size_every_line_is_shown_whole(qtbot, session) -> None:
    view, _, placed = _placed(qtbot, session, (700, 600), False)
    overlay = view.overlay()
    lines = overlay.top_left + overlay.top_right + overlay.bottom_left + overlay.bottom_right
    assert sorted(p.text for p in placed) == sorted(lines + list(overlay.letters.values()))


def test_a_long_description_is_elided_not_drawn_over_the_other_corner(
    qtbot, session, monkeypatch
) -> None:
    long = "A very long series description " * 4
    monkeypatch.setitem(session.volume.metadata, "series_description", long)
    view, area, placed = _placed(qtbot, session, (320, 240), False)
    texts = [p.text for p in placed]
    assert any(t.endswith("…") for t in texts)
    for n, a in enumerate(placed):
        for b in placed[n + 1 :]:
            assert not a.rect.intersects(b.rect)
