"""The conversation model the chat panel and the views observe (Qt-free)."""

from __future__ import annotations

import pytest

from birdview.core.assistant import SWEEP_TASK, Assistant, ModelState, readable_answer
from birdview.core.box import Box
from birdview.core.geometry import Plane, to_canonical
from birdview.core.io import load, scan
from birdview.core.session_store import SessionRecord, StudyRef
from tests.conftest import REPO

SAMPLE = REPO / "resources" / "samples" / "totalseg_ct"


@pytest.fixture(scope="module")
def ct():
    (entry,) = scan(SAMPLE).entries
    return to_canonical(load(entry))


def liver(slice_index: int = 10) -> Box:
    return Box("axial", slice_index, 100, 120, 250, 300, label="liver")


def test_a_turn_streams_then_finishes_with_its_boxes():
    assistant = Assistant()
    seen = []
    assistant.events.revision.connect(lambda *a: seen.append(a[0]))
    turn = assistant.begin("Where is the liver?", task="VG", plane=Plane.AXIAL, slice_index=10)
    assert assistant.busy and turn.state == "waiting" and turn.asked_at
    assistant.add_text(turn.turn_id, "The liver ")
    assistant.add_text(turn.turn_id, "is here")
    assert assistant.turn(turn.turn_id).state == "streaming"
    assert assistant.turn(turn.turn_id).answer == "The liver is here"
    assistant.finish(turn.turn_id, answer="The liver <box>", boxes=[liver()], seconds=1.5)
    done = assistant.turn(turn.turn_id)
    assert done.state == "done" and done.boxes == (liver(),) and not assistant.busy
    assert seen == sorted(seen) and len(seen) == 4  # one signal per change
    # A late message for a finished turn changes nothing.
    assistant.add_text(turn.turn_id, "more")
    assistant.fail(turn.turn_id, "late")
    assert assistant.turn(turn.turn_id) == done


def test_a_failure_keeps_what_streamed_and_the_other_turns():
    assistant = Assistant()
    first = assistant.begin("Where is the liver?", task="VG")
    assistant.finish(first.turn_id, answer="here", boxes=[liver()])
    second = assistant.begin("Describe", task="GC")
    assistant.add_text(second.turn_id, "This region")
    assistant.fail(second.turn_id, "The model stopped unexpectedly")
    failed = assistant.turn(second.turn_id)
    assert failed.state == "error" and failed.answer == "This region"
    assert assistant.turn(first.turn_id).boxes == (liver(),)
    assert not assistant.busy


def test_history_is_only_the_finished_turns_about_the_same_slice():
    assistant = Assistant()
    for index, state in ((10, "done"), (11, "done"), (10, "error"), (10, "done")):
        turn = assistant.begin(f"q{index}", plane=Plane.AXIAL, slice_index=index)
        if state == "done":
            assistant.finish(turn.turn_id, answer=f"a{turn.turn_id}", model_question=f"sent{index}")
        else:
            assistant.fail(turn.turn_id, "boom")
    assert assistant.history_for(Plane.AXIAL, 10) == [("sent10", "a1"), ("sent10", "a4")]
    assert assistant.history_for(Plane.CORONAL, 10) == []


def test_each_box_gets_its_own_colour_and_a_sweep_one_for_all_its_slices(ct):
    assistant = Assistant()
    one = assistant.begin("find two")
    assistant.finish(one.turn_id, answer="", boxes=[liver(), Box("axial", 10, 1, 1, 9, 9)])
    sweep = assistant.begin("colon", task=SWEEP_TASK)
    swept = [Box("axial", 3, 1, 1, 5, 5), Box("axial", 4, 1, 1, 5, 5)]
    assistant.finish_sweep(sweep.turn_id, ct, swept)
    three = assistant.begin("again")
    assistant.finish(three.turn_id, answer="", boxes=[liver(12)])
    slots = [(p.turn_id, p.index, p.colour) for p in assistant.placed_boxes()]
    assert slots == [(1, 0, 0), (1, 1, 1), (2, 0, 2), (2, 1, 2), (3, 0, 3)]
    assert [p.box.slice_index for p in assistant.boxes_on(Plane.AXIAL, 10)] == [10, 10]
    assert assistant.select(3, 0).box == liver(12)
    assert assistant.select(9, 9) is None


def test_a_sweep_summarises_its_extent(ct):
    assistant = Assistant()
    turn = assistant.begin("Where is the colon located in the image?", task=SWEEP_TASK)
    assistant.set_progress(turn.turn_id, 8, 20)
    assert assistant.turn(turn.turn_id).progress == (8, 20)
    boxes = [Box("axial", n, 200, 250, 260, 330, label="colon") for n in range(4, 9)]
    assistant.finish_sweep(turn.turn_id, ct, boxes)
    done = assistant.turn(turn.turn_id)
    assert done.extent.first_slice == 4 and done.extent.last_slice == 8
    assert done.answer.startswith("Found on axial Im 278–282")  # indices 8..4, head first
    assert done.extent.size_mm[2] == pytest.approx(5 * ct.spacing_mm[2])


def test_a_cancelled_sweep_says_how_far_it_got(ct):
    assistant = Assistant()
    turn = assistant.begin("colon", task=SWEEP_TASK)
    assistant.set_progress(turn.turn_id, 8, 20)
    assistant.finish_sweep(turn.turn_id, ct, [], cancelled=True)
    done = assistant.turn(turn.turn_id)
    assert done.state == "cancelled" and done.extent is None
    assert done.answer == "Not found on any axial slice (stopped after 8 of 20 slices)."


def test_round_trip_through_a_session_record(ct):
    assistant = Assistant()
    assistant.clear(StudyRef.of(ct))
    assistant.set_model(ModelState("ready", model_dir="/models/bird-q25", family="qwen2_5_vl"))
    turn = assistant.begin("Where is the liver?", task="VG", slice_index=10)
    assistant.finish(turn.turn_id, answer="<box>", boxes=[liver()])
    sweep = assistant.begin("colon", task=SWEEP_TASK)
    assistant.finish_sweep(sweep.turn_id, ct, [Box("axial", n, 1, 1, 9, 9) for n in (2, 3)])
    drawn = Box("axial", 11, 5, 5, 50, 50, label="drawn")
    region = assistant.begin("What is this?", task="RO", slice_index=11, region=drawn)
    assistant.finish(region.turn_id, answer="Liver", model_question="What is at <box>?")
    assistant.begin("still waiting")  # unfinished turns are not saved
    assistant.set_user_box(Box("axial", 10, 5, 5, 50, 50, label="drawn"))
    record = SessionRecord.from_json(assistant.to_record().to_json())
    assert record.model.name == "bird-q25" and len(record.turns) == 3
    assert record.study_identity == ct.identity

    restored = Assistant()
    restored.clear(StudyRef.of(ct))
    restored.restore(record, ct)
    assert [t.question for t in restored.turns] == ["Where is the liver?", "colon", "What is this?"]
    boxless = restored.turns[2]  # no box to tell its slice: the record keeps it
    assert (boxless.plane, boxless.slice_index, boxless.region) == (Plane.AXIAL, 11, drawn)
    assert restored.history_for(Plane.AXIAL, 11) == [("What is at <box>?", "Liver")]
    assert restored.turns[0].boxes == (liver(),)
    assert restored.turns[1].extent.first_slice == 2
    assert restored.user_box == assistant.user_box
    assert restored.history_for(Plane.AXIAL, 10) == [("Where is the liver?", "<box>")]


def test_readable_answer_drops_markup_even_mid_stream():
    qwen2 = (
        "The liver is at <|object_ref_start|>liver<|object_ref_end|>"
        "<|box_start|>(100,200),(300,400)<|box_end|>."
    )
    assert readable_answer(qwen2, "qwen2_vl") == "The liver is at liver."
    qwen3 = (
        "The liver is located at ```json\n[\n\t"
        '{"bbox_2d": [209, 383, 527, 732], "label": "liver"}\n]\n```.'
    )
    assert readable_answer(qwen3, "qwen3_vl") == "The liver is located at the box shown."
    assert readable_answer("The liver is not in this image.", "qwen3_vl") == (
        "The liver is not in this image."
    )
    assert readable_answer("The liver is at <|object_ref_start|>liv", "") == "The liver is at liv"
    assert readable_answer("<ref>hip left</ref><box>(1,2),(30,40)</box>", "medgrit") == "hip left"


def test_an_answer_of_boxes_alone_reads_as_their_labels():
    block = (
        '```json\n[{"bbox_2d": [209, 383, 527, 732], "label": "liver"},'
        ' {"bbox_2d": [600, 300, 700, 400], "label": "spleen"},'
        ' {"bbox_2d": [10, 30, 70, 40], "label": "liver"}]\n```'
    )
    assert readable_answer(block, "qwen3_vl") == "liver, spleen"
    assert readable_answer(block, "qwen2_5_vl") == "liver, spleen"
    unnamed = '```json\n[{"bbox_2d": [209, 383, 527, 732]}]\n```'
    assert readable_answer(unnamed, "qwen3_vl") == "the box shown"


def test_the_drawn_box_must_be_a_box():
    with pytest.raises(TypeError):
        Assistant().set_user_box((1, 2, 3, 4))


def _answered(volume, question: str = "Where is the liver?", box: Box | None = None) -> Assistant:
    assistant = Assistant()
    assistant.clear(StudyRef.of(volume))
    turn = assistant.begin(question, task="VG", slice_index=10)
    assistant.finish(turn.turn_id, answer="<box>", boxes=[box or liver()])
    return assistant


def test_a_record_names_the_study_of_its_conversation_not_the_one_open_now(ct):
    assistant = _answered(ct)
    other = ct.with_changes(voxels=ct.voxels[::-1])  # same geometry, other content
    assistant.clear(StudyRef.of(other))
    assert assistant.to_record().study_identity == other.identity != ct.identity
    assert assistant.to_record().turns == ()  # clearing for a new study forgot the old turns


def test_restore_refuses_another_studys_record_and_changes_nothing(ct):
    record = _answered(ct).to_record()
    other = ct.with_changes(voxels=ct.voxels[::-1])
    assistant = _answered(other, "Where is the spleen?")
    with pytest.raises(ValueError, match="different studies"):
        assistant.restore(record, other)
    # Open study and record agree, but the conversation is about another study.
    with pytest.raises(ValueError, match="another study is open"):
        assistant.restore(record, ct)
    assert [t.question for t in assistant.turns] == ["Where is the spleen?"]


def test_restore_refuses_boxes_on_slices_the_study_does_not_have(ct):
    record = _answered(ct, box=liver(slice_index=99)).to_record()
    assistant = Assistant()
    assistant.clear(StudyRef.of(ct))
    with pytest.raises(ValueError, match="axial slice 99 of a study with 20"):
        assistant.restore(record, ct)
    assert assistant.turns == ()


def test_no_record_without_a_study():
    with pytest.raises(ValueError, match="no study is open"):
        Assistant().to_record()
