"""Clearing the conversation, hiding answer boxes and deleting one are undo steps of the core
assistant; revealing an answer box by box shows them one at a time; the history goes when the
conversation moves on. A real assistant on the sample CT's identity, no Qt."""

from __future__ import annotations

from dataclasses import replace

import pytest

from birdview.core.assistant import Assistant
from birdview.core.box import Box
from birdview.core.conversation_edits import ConversationEdits
from birdview.core.session_store import StudyRef, load_session, save_session
from tests.core.test_measure import REPO, ct, study


def _answered() -> tuple[Assistant, ConversationEdits]:
    assistant = Assistant()
    assistant.clear(StudyRef.of(ct()))
    edits = ConversationEdits(assistant)
    for n, organ in enumerate(("liver", "kidneys")):
        turn = assistant.begin(f"Where is the {organ}?", task="VG", plane="axial", slice_index=7)
        boxes = [
            Box("axial", 7, 10 + 40 * k, 20, 40 + 40 * k, 60, label=organ) for k in range(n + 2)
        ]
        assistant.finish(turn.turn_id, answer=organ, boxes=boxes)
    return assistant, edits


def _drawn(assistant: Assistant) -> list[tuple[int, int]]:
    return [(p.turn_id, p.index) for p in assistant.boxes_on("axial", 7)]


def test_clear_is_undone_and_redone():
    assistant, edits = _answered()
    turns = assistant.turns
    assert edits.clear_conversation()
    assert assistant.turns == () and _drawn(assistant) == []
    assert edits.undo() and assistant.turns == turns
    assert edits.redo() and assistant.turns == ()
    assert edits.undo() and len(_drawn(assistant)) == 5


def test_hiding_one_answer_or_all_and_undo():
    assistant, edits = _answered()
    assert edits.set_turn_hidden(1, True)
    assert _drawn(assistant) == [(2, 0), (2, 1), (2, 2)]
    assert edits.set_all_hidden(True) and _drawn(assistant) == []
    assert assistant.boxes_on("axial", 7) == [] and assistant.turns[0].boxes  # kept, not drawn
    assert edits.undo() and _drawn(assistant) == [(2, 0), (2, 1), (2, 2)]
    assert edits.undo() and len(_drawn(assistant)) == 5
    assert not edits.set_turn_hidden(1, False)  # already shown: no step


def test_deleting_one_box_and_undo():
    assistant, edits = _answered()
    middle = assistant.turn(2).boxes[1]
    assistant.select(2, 1)
    assert edits.delete_box(2, 1)
    assert middle not in assistant.turn(2).boxes and len(assistant.turn(2).boxes) == 2
    assert assistant.selected is None
    # The saved record loses the box too: the session file holds what is shown.
    assert len(assistant.to_record().turns[1].boxes) == 2
    assert edits.undo() and assistant.turn(2).boxes[1] == middle
    assert not edits.delete_box(2, 7) and not edits.delete_box(9, 0)


def test_a_new_question_makes_the_history_stale_and_busy_refuses_edits():
    assistant, edits = _answered()
    edits.clear_conversation()
    turn = assistant.begin("Describe", task="MII", plane="axial", slice_index=7)
    assert not edits.can_undo and not edits.undo()  # undo would drop the new question
    assert not edits.clear_conversation()  # the model is answering
    assistant.finish(turn.turn_id, answer="A CT slice.")
    assert edits.clear_conversation()


def test_boxes_revealed_one_at_a_time():
    assistant, edits = _answered()
    assert edits.start_reveal() == 2
    assert _drawn(assistant) == [(1, 0), (1, 1)]  # the latest answer's boxes wait
    counts = []
    for _ in range(4):
        counts.append(edits.reveal_next())
        assert _drawn(assistant)[2:] == [(2, k) for k in range(counts[-1])]
    assert counts == [1, 2, 3, 3]
    edits.set_all_hidden(True)  # a reveal does not make the history stale
    assert edits.can_undo
    edits.undo()
    edits.stop_reveal()
    assert len(_drawn(assistant)) == 5


def test_hidden_boxes_are_saved_with_the_session_and_restored(tmp_path):
    """Hidden answers and 'all hidden' go into the study's session file and come back on the
    study's reopening (by position: an unfinished question is not saved and a restore numbers
    the turns from 1); a record of another study is refused and changes nothing."""
    assistant, edits = _answered()
    pending = assistant.begin("Where is the spleen?", task="VG", plane="axial", slice_index=7)
    assistant.finish(pending.turn_id, answer="spleen", boxes=[Box("axial", 7, 1, 1, 9, 9)])
    unfinished = assistant.begin("Describe", task="MII", plane="axial", slice_index=7)
    assert unfinished.turn_id == 4
    assistant.visibility = replace(assistant.visibility, hidden_turns=frozenset({1, 3, 4}))
    record = assistant.to_record()
    assert record.hidden_answers == (0, 2) and record.all_boxes_hidden is False
    save_session(record, tmp_path)

    reopened = Assistant()
    reopened.clear(StudyRef.of(ct()))
    reopened.restore(load_session(ct().identity, tmp_path), ct())
    assert [(p.turn_id, p.index) for p in reopened.boxes_on("axial", 7)] == [(2, 0), (2, 1), (2, 2)]
    assert ConversationEdits(reopened).set_all_hidden(True)
    assert reopened.to_record().all_boxes_hidden and reopened.boxes_on("axial", 7) == []
    again = Assistant()
    again.clear(StudyRef.of(ct()))
    again.restore(reopened.to_record(), ct())
    assert again.visibility.all_hidden and again.visibility.hidden_turns == {1, 3}

    other = study(str(REPO / "resources" / "samples" / "dcm4che_mr"))
    theirs = replace(reopened.to_record(), study_identity=other.identity)
    with pytest.raises(ValueError, match="they are different studies"):
        again.restore(theirs, ct())
    assert again.visibility.all_hidden and again.visibility.hidden_turns == {1, 3}
