"""A cleared conversation stays cleared: clear the chat of the sample CT (Clear conversation),
open the bundled MR, come back — no answer comes back and the clear cannot be undone any more;
the same when the app is closed right after clearing. A study that never had a conversation
gets no session file. The real window and session folder, no model needed (answers are put in
the assistant)."""

from __future__ import annotations

from birdview.core.box import Box
from birdview.core.geometry import Plane
from birdview.core.session_store import load_session, session_path
from tests.conftest import REPO
from tests.ui.helpers import open_and_wait

CT = REPO / "resources" / "samples" / "totalseg_ct"
MR = REPO / "resources" / "samples" / "dcm4che_mr"


def _answer(window, organ: str) -> int:
    assistant, index = window.assistant, window.session.slice_index(Plane.AXIAL)
    turn = assistant.begin(f"Where is the {organ}?", task="VG", plane="axial", slice_index=index)
    assistant.finish(turn.turn_id, answer=organ, boxes=[Box("axial", index, 60, 200, 130, 280)])
    return turn.turn_id


def _saved_turns(identity: str, folder) -> int | None:
    """How many answers the study's session file holds (None: no file)."""
    if not session_path(identity, folder).is_file():
        return None
    return len(load_session(identity, folder).turns)


def test_a_cleared_conversation_stays_cleared_after_another_study(qtbot, make_main_window) -> None:
    window = make_main_window("1x1")
    open_and_wait(qtbot, window, CT)
    assistant, chat = window.assistant, window.chat_panel
    ct, folder = window.session.volume.identity, window.controller.session_dir
    for organ in ("kidney", "liver"):
        _answer(window, organ)
    qtbot.waitUntil(lambda: _saved_turns(ct, folder) == 2, timeout=5000)

    chat.conversation.clear_action.trigger()
    assert not assistant.turns and chat.edits.can_undo
    open_and_wait(qtbot, window, MR)  # leaving the CT saves its (now empty) conversation
    assert _saved_turns(ct, folder) == 0
    mr = window.session.volume.identity
    qtbot.wait(800)  # longer than the autosave delay
    assert _saved_turns(mr, folder) is None  # the MR never had a conversation: no file

    open_and_wait(qtbot, window, CT)
    assert assistant.turns == ()
    assert not chat.edits.can_undo  # the clear was of the last visit: nothing to take back
    assert not chat.conversation.undo_action.isEnabled()
    open_and_wait(qtbot, window, MR)
    assert _saved_turns(mr, folder) is None


def test_a_conversation_cleared_just_before_closing_stays_cleared(qtbot, make_main_window) -> None:
    window = make_main_window("1x1")
    open_and_wait(qtbot, window, CT)
    ct, folder = window.session.volume.identity, window.controller.session_dir
    _answer(window, "spleen")
    qtbot.waitUntil(lambda: _saved_turns(ct, folder) == 1, timeout=5000)
    window.chat_panel.conversation.clear_action.trigger()
    window.close()  # no time for the autosave: closing saves
    assert _saved_turns(ct, folder) == 0

    again = make_main_window("1x1")
    open_and_wait(qtbot, again, CT)
    assert again.controller.session_dir == folder
    assert again.assistant.turns == ()
