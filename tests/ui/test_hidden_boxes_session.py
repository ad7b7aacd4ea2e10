"""Hidden answer boxes are part of the study's saved session: hide one answer's boxes (the link
under it) and all of them (H) on the sample CT, open another study, come back — the same boxes
stay hidden, the chat says so and H's action is still checked; the other study shows none of
it. The hidden state is autosaved like an answer, and reopening writes nothing back. The real
window and session folder, no model needed (answers are put in the assistant)."""

from __future__ import annotations

from PySide6.QtCore import Qt, QUrl
from PySide6.QtTest import QTest

from birdview.core.box import Box
from birdview.core.geometry import Plane
from birdview.core.session_store import load_session, session_path
from tests.conftest import REPO
from tests.ui.helpers import open_and_wait

CT = REPO / "resources" / "samples" / "totalseg_ct"
MR = REPO / "resources" / "samples" / "dcm4che_mr"


def _answer(window, organ: str, count: int) -> int:
    assistant, index = window.assistant, window.session.slice_index(Plane.AXIAL)
    turn = assistant.begin(f"Where is the {organ}?", task="VG", plane="axial", slice_index=index)
    boxes = [Box("axial", index, 60 + 90 * k, 200, 130 + 90 * k, 280) for k in range(count)]
    assistant.finish(turn.turn_id, answer=organ, boxes=boxes)
    return turn.turn_id


def test_hidden_boxes_come_back_hidden_with_the_study(qtbot, make_main_window) -> None:
    window = make_main_window("1x1")
    open_and_wait(qtbot, window, CT)
    view, assistant, chat = window.view_layout.main_view, window.assistant, window.chat_panel
    identity = window.session.volume.identity
    kidney, liver = _answer(window, "kidney", 2), _answer(window, "liver", 1)
    chat._on_anchor(QUrl(f"hide:{kidney}"))  # "Hide boxes" under the kidney answer
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_H)  # and then every box
    index = window.session.slice_index(Plane.AXIAL)
    assert assistant.boxes_on(Plane.AXIAL, index) == []
    folder = window.controller.session_dir

    def saved_hidden() -> bool:  # autosaved a moment after the change, like an answer
        saved = load_session(identity, folder) if session_path(identity, folder).is_file() else None
        return saved is not None and saved.hidden_answers == (0,) and saved.all_boxes_hidden

    qtbot.waitUntil(saved_hidden, timeout=5000)

    open_and_wait(qtbot, window, MR)  # the CT's session is saved as it leaves
    assert saved_hidden()
    written = session_path(identity, folder).stat().st_mtime_ns
    assert not assistant.turns and not assistant.visibility.all_hidden

    open_and_wait(qtbot, window, CT)
    index = window.session.slice_index(Plane.AXIAL)
    assert [t.turn_id for t in assistant.turns] == [kidney, liver]
    assert assistant.boxes_on(Plane.AXIAL, index) == []
    assert chat.conversation.hide_all_action.isChecked()
    qtbot.wait(800)  # longer than the autosave delay: reopening writes nothing back
    assert session_path(identity, folder).stat().st_mtime_ns == written
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_H)  # show all again: the kidney answer stays hidden
    assert [p.turn_id for p in assistant.boxes_on(Plane.AXIAL, index)] == [liver]
    qtbot.waitUntil(lambda: "Show boxes (hidden)" in chat.transcript.toPlainText())
