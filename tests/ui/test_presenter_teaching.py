"""Presenter mode on the real window: every control larger (sizes measured before and after),
no patient identity from the sample MR's header in any visible text, the window title or the
views' overlays, plain words instead of jargon, the laser pointer and the spotlight drawn on the
main view (its pixels grabbed), and an answer's boxes revealed one at a time with N."""

from __future__ import annotations

import numpy as np
import pydicom
from PySide6.QtCore import QEvent, QPoint, Qt
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QLabel,
    QLineEdit,
    QTextEdit,
    QWidget,
)

from birdview.core.box import Box
from birdview.core.geometry import Plane
from tests.conftest import REPO
from tests.ui.helpers import mouse, open_and_wait

CT = REPO / "resources" / "samples" / "totalseg_ct"
MR = REPO / "resources" / "samples" / "dcm4che_mr"


def _phi() -> list[str]:
    """The sample MR's patient name parts, ID and birth date, as its header has them."""
    ds = pydicom.dcmread(MR / "MR01.dcm", stop_before_pixels=True)
    name = ds.PatientName
    found = [
        name.family_name,
        name.given_name,
        str(ds.PatientID),
        str(ds.get("PatientBirthDate", "")),
    ]
    return [p for p in found if len(p) >= 2]


def _visible_texts(window) -> list[str]:
    """Every text a visible widget of the window shows, its title and the views' overlays."""
    texts = [window.windowTitle()]
    for widget in window.findChildren(QWidget):
        if not widget.isVisible():
            continue
        if isinstance(widget, (QLabel, QAbstractButton)):
            texts.append(widget.text())
        elif isinstance(widget, QLineEdit):
            texts += [widget.text(), widget.placeholderText()]
        elif isinstance(widget, QTextEdit):
            texts.append(widget.toPlainText())
        elif isinstance(widget, QAbstractItemView) and widget.model() is not None:
            model = widget.model()
            texts += _model_texts(model, model.index(-1, -1))
        texts.append(widget.windowTitle())
    for view in (window.view_layout.main_view, *window.view_layout.small_views.values()):
        overlay = view.overlay()
        texts += overlay.top_left + overlay.top_right + overlay.bottom_left + overlay.bottom_right
    return texts


def _model_texts(model, parent) -> list[str]:
    out = []
    for row in range(model.rowCount(parent)):
        for column in range(model.columnCount(parent)):
            index = model.index(row, column, parent)
            out.append(str(model.data(index) or ""))
            out += _model_texts(model, index) if column == 0 else []
    return out


def _leaks(window) -> list[str]:
    QApplication.processEvents()
    texts = "\n".join(_visible_texts(window)).upper()
    return [p for p in _phi() if p.upper() in texts]


def test_no_patient_identity_anywhere_in_presenter_mode(qtbot, make_main_window, tmp_path):
    window = make_main_window("1+3")
    open_and_wait(qtbot, window, MR)
    window.tag_dock.show()
    window.tag_browser.follow()
    assert len(_phi()) >= 2 and _leaks(window)  # shown in normal mode: the walk finds them
    window.set_presenter(True)
    assert window.session.phi_hidden
    assert _leaks(window) == []
    window.tag_dock.show()  # even the header, opened in presenter mode
    qtbot.waitUntil(lambda: window.tag_browser.model.rowCount() > 10)
    assert _leaks(window) == []
    # An export into a folder named after the patient: the names shown carry no identity.
    folder = tmp_path / " ".join(_phi())
    folder.mkdir()
    suggested = []
    window.exporter.ask_path = lambda title, path, kinds: (
        suggested.append(path) or str(folder / "teaching.png")
    )
    assert window.exporter.png()
    shown = window.status.currentMessage() + " " + suggested[0].rsplit("/", 1)[-1]
    assert "teaching.png" in shown and not [p for p in _phi() if p in shown]
    window.set_presenter(False)
    assert not window.session.phi_hidden
    qtbot.waitUntil(lambda: bool(_leaks(window)))
    # Outside presenter mode on request; the PACS browser hides its patient columns too.
    browser = window.pacs.show()
    assert not browser.presenter
    window.presenter_mode.phi_action.trigger()
    assert window.session.phi_hidden and browser.presenter
    qtbot.waitUntil(lambda: _leaks(window) == [])
    window.presenter_mode.phi_action.trigger()
    assert not browser.presenter
    browser.close()


def _sizes(window) -> dict[str, float]:
    chat = window.chat_panel
    spin = window.findChildren(QAbstractSpinBox)[0]
    legend = window.labels.legend.labels
    for widget in (chat, spin, window.status, window.tool_bar, legend):
        widget.ensurePolished()
    return {
        "button height": chat.ask_button.sizeHint().height(),
        "button font": chat.ask_button.fontInfo().pixelSize(),
        "spin box height": spin.sizeHint().height(),
        "line edit height": chat.input.sizeHint().height(),
        "status bar font": window.status.fontInfo().pixelSize(),
        "tool bar icons": window.tool_bar.iconSize().height(),
        "legend icons": legend.iconSize().height(),
        "dock title": window.chat_dock.widget().geometry().top(),
        "label font": window.findChildren(QLabel)[0].fontInfo().pixelSize(),
    }


def test_every_control_grows(qtbot, make_main_window):
    window = make_main_window("1x1")
    open_and_wait(qtbot, window, CT)
    before = _sizes(window)
    window.set_presenter(True)
    qtbot.waitUntil(lambda: window.chat_dock.widget().geometry().top() > before["dock title"])
    after = _sizes(window)
    grown = {k: (before[k], after[k]) for k in before if after[k] >= before[k] * 1.3}
    assert grown.keys() == before.keys(), {k: (before[k], after[k]) for k in before}
    window.set_presenter(False)
    qtbot.waitUntil(lambda: _sizes(window) == before)


def test_plain_words_in_presenter_mode(qtbot, make_main_window):
    window = make_main_window("1x1")
    open_and_wait(qtbot, window, CT)
    view, assistant = window.view_layout.main_view, window.assistant
    turn = assistant.begin("liver", task="VG3D", plane="axial")
    boxes = [Box("axial", k, 100, 100, 200, 220, label="liver") for k in (3, 4, 5)]
    assistant.finish_sweep(turn.turn_id, window.session.volume, boxes)
    chat = window.chat_panel.transcript
    qtbot.waitUntil(lambda: "3D box (LPS mm)" in chat.toPlainText())
    normal = "\n".join(view.overlay().bottom_left + view.overlay().bottom_right)
    assert "W " in normal and " / L " in normal
    window.set_presenter(True)
    qtbot.waitUntil(lambda: "Extent:" in chat.toPlainText())
    lines = view.overlay().bottom_left + view.overlay().bottom_right
    text = "\n".join(lines) + chat.toPlainText()
    assert "LPS" not in text and " / L " not in text and "Contrast" in text
    assert any(line.startswith("Image ") or line.startswith("Slice ") for line in lines)


def _grab(widget) -> np.ndarray:
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    data = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    rows = data.reshape(image.height(), image.bytesPerLine() // 4, 4)
    return rows[:, : image.width(), 2::-1].astype(int)


def _bright_point_away_from(pixels: np.ndarray, centre: QPoint, distance: float) -> QPoint:
    rows, cols = np.mgrid[0 : pixels.shape[0], 0 : pixels.shape[1]]
    away = np.hypot(cols - centre.x(), rows - centre.y()) > distance
    y, x = np.argwhere(away & (pixels.sum(axis=2) > 240))[0]
    return QPoint(int(x), int(y))


def test_laser_pointer_and_spotlight_are_drawn(qtbot, make_main_window):
    window = make_main_window("1x1")
    open_and_wait(qtbot, window, CT)
    window.set_presenter(True)
    window.labels_dock.hide()  # the test screen is 800 px wide: the legend leaves no room
    view = window.view_layout.main_view
    viewport = view.viewport()
    qtbot.waitUntil(lambda: viewport.width() > 330 and viewport.height() > 330)
    centre = viewport.rect().center()
    plain = _grab(viewport)
    far = _bright_point_away_from(plain, centre, 170)  # outside the spotlight, on tissue
    mouse(viewport, QEvent.Type.MouseMove, centre, Qt.MouseButton.NoButton)
    laser = _grab(viewport)
    r, g, b = laser[centre.y(), centre.x() + 6]
    assert r > 200 and g < 90 and b < 90  # a red dot where the mouse is
    assert viewport.cursor().shape() == Qt.CursorShape.BlankCursor
    QTest.keyClick(view, Qt.Key.Key_S)
    spot = _grab(viewport)
    assert spot[far.y(), far.x()].sum() < 0.5 * plain[far.y(), far.x()].sum() + 1
    inside = QPoint(centre.x() + 60, centre.y() + 60)
    assert abs(spot[inside.y(), inside.x()] - plain[inside.y(), inside.x()]).sum() < 12
    QTest.keyClick(view, Qt.Key.Key_S)
    QTest.keyClick(view, Qt.Key.Key_P)
    off = _grab(viewport)
    assert np.abs(off - plain).max() < 12  # both off: the image as it was


def test_answer_boxes_revealed_one_by_one(qtbot, make_main_window):
    window = make_main_window("1x1")
    open_and_wait(qtbot, window, CT)
    session, assistant = window.session, window.assistant
    index = session.slice_index(Plane.AXIAL)
    turn = assistant.begin("Where are the kidneys and the spine?", task="VG", slice_index=index)
    boxes = [
        Box("axial", index, 60 + 130 * k, 250, 150 + 130 * k, 340, label=name)
        for k, name in enumerate(("right kidney", "spine", "left kidney"))
    ]
    assistant.finish(turn.turn_id, answer="kidneys and spine", boxes=boxes)
    window.set_presenter(True)
    window.labels_dock.hide()  # the test screen is 800 px wide: the legend leaves no room
    view = window.view_layout.main_view
    qtbot.waitUntil(lambda: view.viewport().width() > 330)
    QTest.keyClick(view, Qt.Key.Key_P)  # the laser off: only boxes change the pixels
    shown = []
    for _ in range(3):
        QTest.keyClick(view, Qt.Key.Key_N)
        qtbot.wait(600)  # the box has grown into place
        shown.append([p.box.label for p in assistant.boxes_on(Plane.AXIAL, index)])
        pixels = _grab(view.viewport())
        for n, box in enumerate(boxes):
            edge = view.image_to_viewport(box.x1_px, (box.y1_px + box.y2_px) / 2).toPoint()
            drawn = np.abs(pixels[edge.y(), edge.x() - 1 : edge.x() + 2]).max(axis=0)
            coloured = drawn.max() - drawn.min() > 80  # a box colour, not grey tissue
            assert coloured == (n < len(shown[-1])), (n, shown[-1])
    assert shown == [["right kidney"], ["right kidney", "spine"], [b.label for b in boxes]]
    QTest.keyClick(view, Qt.Key.Key_N, Qt.KeyboardModifier.ShiftModifier)
    window.set_presenter(False)
    assert len(assistant.boxes_on(Plane.AXIAL, index)) == 3
