"""What a view says about its slice, on real DICOM series: the Instance Number and Slice
Location of an acquired slice, paging in radiology's reading order, and the voxel under the
mouse."""

from __future__ import annotations

import math

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtWidgets import QApplication

from birdview.core import geometry
from birdview.core.geometry import Plane
from birdview.core.io import load, scan
from birdview.core.session import Session
from birdview.ui.slice_view import SliceView
from tests.conftest import REPO
from tests.ui.helpers import mouse, wheel

SAMPLE_CT = REPO / "resources" / "samples" / "totalseg_ct"  # Instance Numbers 267 (head)..286
SAMPLE_MR = REPO / "resources" / "samples" / "dcm4che_mr"  # coronal, 1 (front)..16 (back)


def _open(path) -> Session:
    entry = scan(path).entries[0]
    raw = load(entry)
    session = Session()
    session.open_volume(geometry.to_canonical(raw), entry, geometry.acquisition_plane(raw))
    return session


@pytest.fixture(scope="module")
def ct_session_parts():
    entry = scan(SAMPLE_CT).entries[0]
    raw = load(entry)
    return geometry.to_canonical(raw), entry, geometry.acquisition_plane(raw)


@pytest.fixture
def ct(ct_session_parts) -> Session:
    session = Session()
    session.open_volume(*ct_session_parts)
    return session


def _view(qtbot, session: Session, plane: Plane) -> SliceView:
    view = SliceView(session, plane)
    qtbot.addWidget(view)
    view.resize(500, 500)
    view.show()
    qtbot.waitExposed(view)
    view.setFocus()
    return view


def test_axial_ct_shows_instance_number_and_slice_location(qtbot, ct) -> None:
    view = _view(qtbot, ct, Plane.AXIAL)
    # Opened on the middle slice: index 10 of 20 counted from the feet, the 10th from the head.
    assert view.overlay().bottom_left == ["Im 276 (10/20)", "Loc -784.5 mm"]
    qtbot.keyClick(view, Qt.Key.Key_Home)
    assert view.overlay().bottom_left == ["Im 267 (1/20)", "Loc -766.5 mm"]
    qtbot.keyClick(view, Qt.Key.Key_Down)
    assert view.overlay().bottom_left == ["Im 268 (2/20)", "Loc -768.5 mm"]
    qtbot.keyClick(view, Qt.Key.Key_End)
    assert view.overlay().bottom_left == ["Im 286 (20/20)", "Loc -804.5 mm"]


def test_the_number_shown_is_the_file_on_screen(qtbot, ct) -> None:
    import pydicom

    view = _view(qtbot, ct, Plane.AXIAL)
    for key in (Qt.Key.Key_Home, Qt.Key.Key_PageDown, Qt.Key.Key_Down, Qt.Key.Key_End):
        qtbot.keyClick(view, key)
        source = ct.volume.source_at(ct.cursor_ijk)
        header = pydicom.dcmread(source.path, stop_before_pixels=True)
        assert view.overlay().bottom_left[0].startswith(f"Im {header.InstanceNumber} (")
        assert view.overlay().bottom_left[1] == f"Loc {float(header.SliceLocation):.1f} mm"


def test_paging_keeps_the_session_in_index_order(qtbot, ct) -> None:
    """Home shows the most cranial slice; the session's index (what boxes and the model use)
    is still k, which runs towards the head: Home is k = 19, not 0."""
    view = _view(qtbot, ct, Plane.AXIAL)
    qtbot.keyClick(view, Qt.Key.Key_Home)
    assert ct.slice_index(Plane.AXIAL) == 19 and ct.cursor_ijk[2] == 19
    z = [geometry.slice_position_mm(ct.volume, Plane.AXIAL, k) for k in range(20)]
    assert z[19] == max(z)
    wheel(view.viewport(), view.viewport().rect().center(), -120)  # towards the user: feet
    assert ct.slice_index(Plane.AXIAL) == 18


def test_reformatted_planes_do_not_claim_an_instance_number(qtbot, ct) -> None:
    view = _view(qtbot, ct, Plane.CORONAL)
    line, position = view.overlay().bottom_left
    assert line == "Slice 257/512" and not line.startswith("Im")
    assert position == f"Pos {geometry.slice_position_mm(ct.volume, Plane.CORONAL, 256):.1f} mm"
    qtbot.keyClick(view, Qt.Key.Key_Home)  # the most anterior coronal slice
    assert view.overlay().bottom_left[0] == "Slice 1/512" and ct.slice_index(Plane.CORONAL) == 0


def test_coronal_mr_pages_front_to_back_by_instance(qtbot) -> None:
    session = _open(SAMPLE_MR)
    assert session.main_plane is Plane.CORONAL
    view = _view(qtbot, session, Plane.CORONAL)
    qtbot.keyClick(view, Qt.Key.Key_Home)
    assert view.overlay().bottom_left[0] == "Im 1 (1/16)"
    front_y = geometry.slice_position_mm(session.volume, Plane.CORONAL, 0)
    qtbot.keyClick(view, Qt.Key.Key_Down)
    assert view.overlay().bottom_left[0] == "Im 2 (2/16)"
    y = geometry.slice_position_mm(
        session.volume, Plane.CORONAL, session.slice_index(Plane.CORONAL)
    )
    assert y > front_y  # LPS y grows posterior: Down went backwards through the patient


def _hover(view: SliceView, pos: QPoint) -> None:
    no_button = Qt.MouseButton.NoButton
    mouse(view.viewport(), QEvent.Type.MouseMove, pos, no_button, no_button)


def test_the_view_reports_the_voxel_under_the_mouse(qtbot, ct) -> None:
    view = _view(qtbot, ct, Plane.AXIAL)
    view.resize(700, 500)  # wider than the square image: black margins left and right
    view.fit()
    seen = []
    view.hovered.connect(seen.append)
    point = view.image_to_viewport(100.5, 300.5).toPoint()
    _hover(view, point)
    x, y = view.viewport_to_image(QPointF(point))  # the pixel under that screen point
    col, row = math.floor(x), math.floor(y)
    k = ct.slice_index(Plane.AXIAL)
    assert seen[-1] == (col, row, k) and ct.cursor_ijk != (col, row, k)  # no click needed
    wheel(view.viewport(), view.viewport().rect().center(), -120)  # the mouse rests; slice moves
    assert seen[-1] == (col, row, k - 1)
    _hover(view, QPoint(5, 250))  # black margin beside the image: no voxel
    assert seen[-1] is None
    _hover(view, point)
    QApplication.sendEvent(view, QEvent(QEvent.Type.Leave))
    assert seen[-1] is None
