"""Arrows, text notes, key images and the conversation's undoable edits, driven by real mouse
and key events on the real window with the sample CT: what is drawn is checked in the grabbed
viewport, what is kept in the study's files and exports."""

from __future__ import annotations

import numpy as np
import pydicom
from PySide6.QtCore import QEvent, QPoint, Qt, QUrl
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest

from birdview.core.box import Box
from birdview.core.geometry import Plane
from birdview.core.key_images import KeyImage, key_images_path
from birdview.core.measure_store import load_measurements
from tests.conftest import REPO
from tests.ui.helpers import click, drag, mouse, open_and_wait

CT = REPO / "resources" / "samples" / "totalseg_ct"


def _window(make_main_window, qtbot):
    window = make_main_window("1x1")
    open_and_wait(qtbot, window, CT)
    view = window.view_layout.main_view
    view.setFocus()
    return window, view


def _pixels(view) -> np.ndarray:
    image = view.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    width, height = image.width(), image.height()
    data = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    return data.reshape(height, image.bytesPerLine() // 4, 4)[:, :width, 2::-1].astype(int)


def _drawn_near(pixels: np.ndarray, point: QPoint, reach: int = 4) -> bool:
    """Yellow (an annotation) or cyan (the selected one) pixels near ``point``."""
    x, y = point.x(), point.y()
    patch = pixels[max(y - reach, 0) : y + reach + 1, max(x - reach, 0) : x + reach + 1]
    r, g, b = patch[..., 0], patch[..., 1], patch[..., 2]
    return bool((((r > 200) & (g > 170) & (b < 90)) | ((r < 60) & (g > 200) & (b > 200))).any())


def test_arrow_and_text_note_drawn_kept_and_undone(qtbot, make_main_window):
    window, view = _window(make_main_window, qtbot)
    measure = window.measure
    window.action_registry.tool_actions["arrow"].trigger()
    assert view.tool == "arrow"
    on_image = lambda x, y: view.image_to_viewport(x, y).toPoint()  # noqa: E731
    tail, tip = on_image(150, 150), on_image(300, 260)
    drag(view.viewport(), tail, tip, Qt.MouseButton.LeftButton)
    (arrow,) = measure.measurements.items
    assert arrow.kind == "arrow" and arrow.plane is Plane.AXIAL
    for point, expected in zip(arrow.points_px, (tail, tip), strict=True):
        assert (view.image_to_viewport(*point) - expected).manhattanLength() < 1.5
    pixels = _pixels(view)
    assert _drawn_near(pixels, (tail + tip) / 2) and _drawn_near(pixels, tip)

    left = Qt.MouseButton.LeftButton
    measure.ask_text = lambda current: "Liver, segment VII"
    window.action_registry.tool_actions["text"].trigger()
    at = on_image(60, 300)
    click(view.viewport(), at)
    note = measure.measurements.items[-1]
    assert (note.kind, note.label) == ("text", "Liver, segment VII")
    text = at + QPoint(45, 0)
    assert _drawn_near(_pixels(view), text, reach=8)  # its text, right of the click

    measure.ask_text = lambda current: current + " (posterior)"
    mouse(view.viewport(), QEvent.Type.MouseButtonDblClick, text, left)
    note = measure.measurements.items[-1]
    assert note.label == "Liver, segment VII (posterior)"  # a double click edits its text
    measure.undo_action.trigger()
    assert measure.measurements.items[-1].label == "Liver, segment VII"
    measure.redo_action.trigger()

    measure.save_now()
    identity = window.session.volume.identity
    assert load_measurements(identity, window.controller.session_dir) == [arrow, note]
    measure.undo_action.trigger()  # the new text
    measure.undo_action.trigger()  # the note
    assert measure.measurements.items == (arrow,)
    measure.measurements.select(0)
    QTest.keyClick(view, Qt.Key.Key_Delete)
    assert measure.measurements.items == ()
    measure.undo_action.trigger()
    assert measure.measurements.items == (arrow,)


def test_key_image_marked_shown_saved_and_exported(qtbot, make_main_window, tmp_path):
    window, view = _window(make_main_window, qtbot)
    session, keys = window.session, window.key_images
    index = session.slice_index(Plane.AXIAL)
    plain = _pixels(view)
    QTest.keyClick(view, Qt.Key.Key_K)
    assert keys.keys.items == (KeyImage(Plane.AXIAL, index),)
    shown = view.overlay().bottom_left[0]  # "Im 276 (10/20)": the tenth in reading order
    number = int(shown.split("(")[1].split("/")[0])
    badge = _pixels(view)
    top = slice(0, 70)  # the badge, under the orientation letter
    gold = (badge[top, ..., 0] > 200) & (badge[top, ..., 1] > 150) & (badge[top, ..., 2] < 60)
    assert gold.sum() > 20 and not ((plain[top, ..., 0] > 200) & (plain[top, ..., 2] < 60)).any()
    session.scroll(Plane.AXIAL, 1)  # another slice: no badge
    assert not keys.is_key(view)
    path = key_images_path(session.volume.identity, window.controller.session_dir)
    assert path.exists()

    folder = tmp_path / "export"
    keys.ask_folder = lambda title: str(folder)
    assert keys.export() == str(folder)
    stem = f"birdview-{session.volume.short_id}"
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"{stem}-key-axial-{number}.png", f"{stem}-key-images.dcm"]
    kos = pydicom.dcmread(folder / f"{stem}-key-images.dcm")
    assert kos.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.59"  # Key Object Selection

    QTest.keyClick(view, Qt.Key.Key_K)  # on the next slice
    session.scroll(Plane.AXIAL, -1)
    QTest.keyClick(view, Qt.Key.Key_K)  # unmarks the first
    assert keys.keys.items == (KeyImage(Plane.AXIAL, index + 1),)


def test_the_sr_export_carries_the_key_images_beside_it(qtbot, make_main_window, tmp_path):
    window, view = _window(make_main_window, qtbot)
    QTest.keyClick(view, Qt.Key.Key_K)
    _answer(window, "liver", 1)
    report = tmp_path / "export" / "report-sr.dcm"
    report.parent.mkdir()
    window.exporter.ask_path = lambda *_: str(report)
    window.action_registry.export_sr_action.trigger()
    stem = f"birdview-{window.session.volume.short_id}"
    names = sorted(p.name for p in report.parent.iterdir())
    assert names == [f"{stem}-key-axial-10.png", f"{stem}-key-images.dcm", "report-sr.dcm"]
    kos = pydicom.dcmread(report.parent / f"{stem}-key-images.dcm")
    assert kos.StudyInstanceUID == pydicom.dcmread(report).StudyInstanceUID


def _answer(window, organ: str, count: int) -> int:
    assistant, session = window.assistant, window.session
    index = session.slice_index(Plane.AXIAL)
    turn = assistant.begin(f"Where is the {organ}?", task="VG", plane="axial", slice_index=index)
    boxes = [
        Box("axial", index, 60 + 90 * k, 200, 130 + 90 * k, 280, label=f"{organ} {k + 1}")
        for k in range(count)
    ]
    assistant.finish(turn.turn_id, answer=organ, boxes=boxes)
    return turn.turn_id


def test_clear_hide_and_delete_in_the_chat_are_undone(qtbot, make_main_window):
    window, view = _window(make_main_window, qtbot)
    assistant, chat = window.assistant, window.chat_panel
    first = _answer(window, "kidney", 2)
    _answer(window, "liver", 1)
    plane, index = Plane.AXIAL, window.session.slice_index(Plane.AXIAL)
    assert len(assistant.boxes_on(plane, index)) == 3
    qtbot.waitUntil(lambda: "Hide boxes" in chat.transcript.toPlainText())
    assert (
        f"hide:{first}" in chat.transcript.toHtml()
        and "✕ kidney 2" in chat.transcript.toPlainText()
    )

    chat._on_anchor(QUrl(f"hide:{first}"))  # the link under the answer
    assert [p.turn_id for p in assistant.boxes_on(plane, index)] == [2]
    QTest.keyClick(view, Qt.Key.Key_H)  # every box hidden
    assert assistant.boxes_on(plane, index) == []
    conversation = chat.conversation
    conversation.undo_action.trigger()
    conversation.undo_action.trigger()
    assert len(assistant.boxes_on(plane, index)) == 3

    assistant.select(first, 1)
    QTest.keyClick(view, Qt.Key.Key_Delete)  # the selected model box
    assert [b.label for b in assistant.turn(first).boxes] == ["kidney 1"]
    conversation.undo_action.trigger()
    assert [b.label for b in assistant.turn(first).boxes] == ["kidney 1", "kidney 2"]

    clear = next(
        b for b in conversation.buttons() if b.defaultAction() is conversation.clear_action
    )
    conversation.clear_action.trigger()
    assert assistant.turns == ()
    qtbot.waitUntil(lambda: "kidney" not in chat.transcript.toPlainText())
    conversation.undo_action.trigger()
    assert [t.question for t in assistant.turns] == ["Where is the kidney?", "Where is the liver?"]
    qtbot.waitUntil(lambda: "kidney" in chat.transcript.toPlainText())
    assert clear.text()
