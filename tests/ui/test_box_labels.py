"""Box names never cross another box or another name: two answer boxes stacked so the lower
one's usual place (above its top edge) lies inside the upper box, drawn by a real slice view on
the sample CT; and the placement rule on its own, including a box at the view's top edge."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSizeF

from birdview.core.assistant import Assistant
from birdview.core.box import Box
from birdview.core.geometry import Plane
from birdview.ui.label_placement import place_label
from birdview.ui.slice_view import SliceView
from tests.ui.test_overlay_layout import ct, session  # noqa: F401 - the sample CT fixtures


def test_names_of_stacked_boxes_cross_no_box(qtbot, session) -> None:  # noqa: F811
    assistant = Assistant()
    index = session.slice_index(Plane.AXIAL)
    upper = Box(Plane.AXIAL, index, 150, 100, 330, 200, label="upper structure")
    lower = Box(Plane.AXIAL, index, 150, 205, 330, 330, label="lower structure")
    turn = assistant.begin("two", task="VG", plane=Plane.AXIAL, slice_index=index)
    assistant.finish(turn.turn_id, answer="found", boxes=[upper, lower])
    view = SliceView(session, Plane.AXIAL, assistant=assistant)
    qtbot.addWidget(view)
    view.resize(600, 600)
    view.show()
    qtbot.waitExposed(view)
    view.grab()  # a real paint
    layer = view._layer
    rects = [layer_rect(view, b) for b in (upper, lower)]
    assert len(layer.label_rects) == 2
    for n, label in enumerate(layer.label_rects):
        other = rects[1 - n]
        assert not label.intersects(other), f"name {n} crosses the other box"
    assert not layer.label_rects[0].intersects(layer.label_rects[1])


def layer_rect(view, box: Box) -> QRectF:
    x1, y1, x2, y2 = box.edges_px
    return QRectF(view.image_to_viewport(x1, y1), view.image_to_viewport(x2, y2)).normalized()


def test_placement_prefers_above_then_below_and_stays_in_view() -> None:
    area = QRectF(0, 0, 400, 400)
    size = QSizeF(60, 14)
    box = QRectF(100, 100, 80, 80)
    assert place_label(box, size, [], [], area).bottom() <= box.top()
    blocker = QRectF(90, 60, 200, 38)  # just above the box
    spot = place_label(box, size, [blocker], [], area)
    assert not spot.intersects(blocker) and not spot.intersects(box)
    at_top = QRectF(100, 0, 80, 80)  # no room above: below instead
    spot = place_label(at_top, size, [], [], area)
    assert area.contains(spot) and spot.top() >= at_top.bottom()
