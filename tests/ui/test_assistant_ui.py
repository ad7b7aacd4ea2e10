"""The refer-and-ground parts of the window that need no model: drawing a box, presenter mode,
sessions saved and restored with the study, answer boxes jumping to their slice, exports."""

from __future__ import annotations

import json

import pydicom
import pytest
from PySide6.QtCore import QPoint, Qt, QUrl

from birdview.core.box import Box
from birdview.core.geometry import Plane
from birdview.core.session_store import default_session_dir, load_record, session_path
from tests.conftest import REPO, SHARED_DATA
from tests.ui.helpers import drag, open_and_wait

SAMPLE_CT = REPO / "resources" / "samples" / "totalseg_ct"
MR_DICOM = SHARED_DATA / "dcm4che_mr"


def viewport_point(view, x: float, y: float) -> QPoint:
    return view.image_to_viewport(x, y).toPoint()


def answer(window, question: str, boxes: list[Box], task: str = "VG") -> int:
    """A finished turn, as the controller records one when the worker replies."""
    box = boxes[0] if boxes else None
    turn = window.assistant.begin(
        question,
        task=task,
        plane=box.plane if box else Plane.AXIAL,
        slice_index=box.slice_index if box else 0,
    )
    window.assistant.finish(turn.turn_id, answer="found", boxes=boxes, model_question=question)
    return turn.turn_id


@pytest.fixture
def ct_window(qtbot, make_main_window):
    window = make_main_window()
    open_and_wait(qtbot, window, SAMPLE_CT)
    assert window.session.volume is not None
    return window


def test_box_tool_draws_moves_resizes_and_deletes(qtbot, ct_window):
    window, view = ct_window, ct_window.view_layout.main_view
    window.action_registry.box_tool_action.trigger()
    start, end = viewport_point(view, 100, 150), viewport_point(view, 300, 260)
    drag(view.viewport(), start, end, Qt.MouseButton.LeftButton)
    box = window.assistant.user_box
    expected = (*view.viewport_to_image(start), *view.viewport_to_image(end))
    assert box is not None and box.plane is Plane.AXIAL
    assert box.slice_index == window.session.slice_index(Plane.AXIAL)
    assert box.edges_px == pytest.approx(expected, abs=1e-6)
    assert window.session.window == window.session.window  # W/L untouched by the drag

    # Drag the bottom-right handle outwards, then the inside to move it.
    corner = viewport_point(view, box.x2_px, box.y2_px)
    drag(view.viewport(), corner, corner + QPoint(40, 30), Qt.MouseButton.LeftButton)
    grown = window.assistant.user_box
    assert (grown.x1_px, grown.y1_px) == pytest.approx((box.x1_px, box.y1_px))
    assert grown.x2_px > box.x2_px + 10 and grown.y2_px > box.y2_px + 10
    inside = viewport_point(view, (grown.x1_px + grown.x2_px) / 2, (grown.y1_px + grown.y2_px) / 2)
    drag(view.viewport(), inside, inside + QPoint(-30, 0), Qt.MouseButton.LeftButton)
    moved = window.assistant.user_box
    assert moved.width_px == pytest.approx(grown.width_px)
    assert moved.x1_px < grown.x1_px - 5 and moved.y1_px == pytest.approx(grown.y1_px)

    # A box never leaves the image.
    far = viewport_point(view, 2000, 2000)
    drag(view.viewport(), viewport_point(view, 400, 400), far, Qt.MouseButton.LeftButton)
    assert window.assistant.user_box.edges_px[2:] == (512.0, 512.0)

    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert window.assistant.user_box is None


def test_left_drag_still_sets_the_window_with_the_window_tool(ct_window):
    view = ct_window.view_layout.main_view
    before = ct_window.session.window
    drag(view.viewport(), QPoint(200, 200), QPoint(260, 230), Qt.MouseButton.LeftButton)
    assert ct_window.session.window != before and ct_window.assistant.user_box is None


def test_without_a_model_the_chat_says_how_to_get_one(ct_window):
    chat = ct_window.chat_panel
    assert chat.hint.isVisibleTo(chat) and "Model panel" in chat.hint.text()
    chat.input.setText("Where is the liver?")
    for button in (chat.ask_button, chat.find_button, chat.sweep_button, chat.analyse_button):
        assert not button.isEnabled()
    chat.send()
    assert ct_window.assistant.turns == ()
    assert "No model configured" in ct_window.model_panel.state_label.text()


def test_presenter_mode_hides_identity_and_chrome(qtbot, make_main_window):
    window = make_main_window()
    open_and_wait(qtbot, window, MR_DICOM)
    name = str(window.session.volume.metadata.get("patient_name", ""))
    view = window.view_layout.main_view
    assert name and view.overlay().top_left  # identity shown normally
    window.set_presenter(True)
    assert window.presenter and window.isFullScreen()
    assert view.overlay().top_left == []
    assert not window.series_dock.isVisible() and not window.menuBar().isVisible()
    assert window.chat_dock.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not window.presenter and window.series_dock.isVisible()
    assert view.overlay().top_left


def test_clicking_an_answer_box_brings_its_slice(qtbot, ct_window):
    window = ct_window
    far = Box("axial", 3, 200, 200, 260, 280, label="colon")
    turn_id = answer(window, "Where is the colon?", [far])
    window.session.set_main_plane(Plane.CORONAL)
    window.chat_panel.transcript.anchorClicked.emit(QUrl(f"box:{turn_id}:0"))
    assert window.session.main_plane is Plane.AXIAL
    assert window.session.slice_index(Plane.AXIAL) == 3
    assert window.assistant.selected == (turn_id, 0)
    i, j, _ = window.session.cursor_ijk
    assert (i, j) == (230, 240)  # the cursor sits in the box's centre


def test_the_session_is_saved_and_restored_with_the_study(qtbot, make_main_window):
    first = make_main_window()
    open_and_wait(qtbot, first, SAMPLE_CT)
    liver = Box("axial", 10, 100, 120, 250, 300, label="liver")
    answer(first, "Where is the liver?", [liver])
    first.assistant.set_user_box(Box("axial", 10, 5, 5, 50, 50, label="drawn"))
    path = session_path(first.session.volume.identity, default_session_dir())
    qtbot.waitUntil(path.exists)  # autosaved without closing
    first.close()
    saved = load_record(path)
    assert [t.question for t in saved.turns] == ["Where is the liver?"]
    # Nothing that names the patient is in the file.
    text = path.read_text()
    header = pydicom.dcmread(next(p for p in SAMPLE_CT.iterdir() if p.name.startswith("CT.")))
    for value in (str(header.PatientName), str(header.PatientID)):
        if value:
            assert value not in text

    second = make_main_window()
    open_and_wait(qtbot, second, SAMPLE_CT)
    assert [t.boxes for t in second.assistant.turns] == [(liver,)]
    assert second.assistant.user_box.edges_px == (5, 5, 50, 50)
    qtbot.waitUntil(lambda: "Where is the liver?" in second.chat_panel.transcript.toPlainText())


def test_an_unreadable_session_file_is_kept_aside_and_the_study_opens(qtbot, make_main_window):
    window = make_main_window()
    open_and_wait(qtbot, window, SAMPLE_CT)
    path = session_path(window.session.volume.identity, default_session_dir())
    window.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b'{"format": "birdview-session", "schema_version": 1, "tur')
    again = make_main_window()
    open_and_wait(qtbot, again, SAMPLE_CT)
    assert again.session.volume is not None and again.assistant.turns == ()
    assert path.with_name(path.name + ".unreadable").exists() and not path.exists()
    again.close()

    path.write_bytes(b"\xff\xfe damaged again")  # a second damaged file keeps the first
    third = make_main_window()
    open_and_wait(qtbot, third, SAMPLE_CT)
    assert path.with_name(path.name + ".unreadable-2").read_bytes().endswith(b"damaged again")
    assert path.with_name(path.name + ".unreadable").read_bytes().startswith(b'{"format"')


def test_a_first_release_session_file_is_set_aside_unread(qtbot, make_main_window):
    """Files of the first release were keyed by `Volume.short_id` and, through the study
    switching bug, could hold another patient's conversation."""
    window = make_main_window()
    open_and_wait(qtbot, window, SAMPLE_CT)
    old = default_session_dir() / f"session-{window.session.volume.short_id}.json"
    window.close()
    old.parent.mkdir(parents=True, exist_ok=True)
    turn = {"question": "Where is the other patient's spleen?", "answer": "a", "boxes": []}
    old.write_text(
        json.dumps({"format": "birdview-session", "schema_version": 1, "study_key": "k",
                    "turns": [turn]})
    )  # fmt: skip
    again = make_main_window()
    messages: list[str] = []
    again.controller.message.connect(messages.append)
    open_and_wait(qtbot, again, SAMPLE_CT)
    assert again.assistant.turns == () and not old.exists()
    assert old.with_name(old.name + ".unreadable").exists()
    assert any("older BirdView" in m for m in messages), messages
    assert "spleen" not in again.chat_panel.transcript.toPlainText()


def test_anonymised_exports_from_the_window_name_nobody(qtbot, make_main_window, tmp_path):
    window = make_main_window()
    open_and_wait(qtbot, window, MR_DICOM)
    meta = window.session.volume.metadata
    identity = [str(meta[k]) for k in ("patient_name", "patient_id") if meta.get(k)]
    assert identity  # the dcm4che MR names its patient
    plane = window.session.main_plane
    index = window.session.slice_index(plane)
    answer(window, "Where is the radius?", [Box(plane, index, 100, 120, 250, 300, label="radius")])
    names = iter(["view.png", "findings.json", "report.dcm"])
    window.exporter.ask_path = lambda *args: str(tmp_path / next(names))
    window.action_registry.anonymise_action.setChecked(True)

    assert window.exporter.png() and (tmp_path / "view.png").stat().st_size > 1000
    assert window.exporter.json()
    data = json.loads((tmp_path / "findings.json").read_text())
    assert data["study"]["anonymised"] and "patient" not in data["study"]
    assert data["notice"].startswith("Research and teaching use")
    (finding,) = data["findings"]
    assert finding["question"] == "Where is the radius?" and finding["box"]["label"] == "radius"
    assert window.exporter.dicom_sr()
    sr = pydicom.dcmread(tmp_path / "report.dcm")
    assert sr.Modality == "SR"
    for name in ("findings.json", "report.dcm"):
        raw = (tmp_path / name).read_bytes()
        for value in identity:
            assert value.encode() not in raw, f"{value!r} in {name}"


def test_presenter_mode_always_anonymises_exports(qtbot, make_main_window):
    window = make_main_window()
    open_and_wait(qtbot, window, MR_DICOM)
    assert not window.action_registry.anonymise_action.isChecked()
    assert window.exporter.anonymised() is False
    window.set_presenter(True)
    assert window.exporter.anonymised() is True


def test_reasoning_streams_then_folds_and_is_kept_in_the_session(qtbot, make_main_window):
    window = make_main_window()
    open_and_wait(qtbot, window, SAMPLE_CT)
    chat = window.chat_panel.transcript
    turn = window.assistant.begin("Where is the liver?", task="VG", slice_index=10)

    window.assistant.add_text(turn.turn_id, "<think>The liver fills the right upper")
    qtbot.waitUntil(lambda: "right upper" in chat.toPlainText())
    assert "Thinking…" in chat.toPlainText()

    liver = Box("axial", 10, 100, 120, 250, 300, label="liver")
    thought = "The liver fills the right upper quadrant, left of the image."
    window.assistant.add_text(turn.turn_id, ' quadrant.</think>[{"bbox_2d": [1, 2, 3, 4]}]')
    window.assistant.finish(
        turn.turn_id,
        answer='[{"bbox_2d": [1, 2, 3, 4], "label": "liver"}]',
        boxes=[liver],
        reasoning=thought,
    )
    qtbot.waitUntil(lambda: "Show the model's reasoning (11 words)" in chat.toPlainText())
    assert "quadrant" not in chat.toPlainText() and "Thinking" not in chat.toPlainText()

    chat.anchorClicked.emit(QUrl(f"reasoning:{turn.turn_id}"))
    assert thought in chat.toPlainText() and "Hide the reasoning" in chat.toPlainText()
    chat.anchorClicked.emit(QUrl(f"reasoning:{turn.turn_id}"))
    assert "quadrant" not in chat.toPlainText()

    window.controller.save_now()
    path = session_path(window.session.volume.identity, default_session_dir())
    assert thought in path.read_text()
    window.close()
    again = make_main_window()
    open_and_wait(qtbot, again, SAMPLE_CT)
    assert [t.reasoning for t in again.assistant.turns] == [thought]
