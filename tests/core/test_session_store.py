"""Session records: JSON round trip, atomic saves that survive a killed writer, damaged and
hostile files, and the study identity that keeps each study's conversation its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from birdview.core.box import Box
from birdview.core.session_store import (
    MAX_SESSION_BYTES,
    ModelInfo,
    RecordedTurn,
    SessionRecord,
    load_record,
    load_session,
    save_atomic,
    save_session,
    session_path,
)

REPO = Path(__file__).resolve().parents[2]
STUDY = "content-sha256:" + "ab" * 32
OTHER_STUDY = "series-sha256:" + "cd" * 32


def _record(n_turns: int = 2, tag: str = "v1", study: str = STUDY) -> SessionRecord:
    turns = tuple(
        RecordedTurn(
            question=f"Where is the liver? {tag} {n}",
            answer=f"<ref>liver</ref><box>(1,2),(3,4)</box> {tag}",
            boxes=(Box("axial", n, 1.5, 2, 30, 40.25, label="liver", score=0.9),),
            task="VG",
            asked_at="2024-05-01T10:00:00+00:00",
        )
        for n in range(n_turns)
    )
    return SessionRecord(
        study_identity=study,
        study_paths=("/data/ct",),
        series_description="CT Body 3.0",
        model=ModelInfo("BiRD-7B", "bird", "bf16", "0f" * 32),
        created_at="2024-05-01T10:00:00+00:00",
        updated_at="2024-05-01T10:05:00+00:00",
        turns=turns,
        user_boxes=(Box("coronal", 3, 0, 0, 5, 5, flags=("clamped",)),),
    )


def test_round_trip(tmp_path):
    record = _record()
    path = save_session(record, tmp_path)
    assert path == session_path(STUDY, tmp_path) == tmp_path / "session-abababababababab.json"
    assert load_record(path) == record == load_session(STUDY, tmp_path)
    assert SessionRecord.from_json(record.to_json()) == record
    assert load_session(OTHER_STUDY, tmp_path) is None


def test_only_study_identities_name_sessions(tmp_path):
    for key in ("e5cfccd8", "DOE^J1 583295", "../../x", ""):
        with pytest.raises(ValueError, match="study identity"):
            session_path(key, tmp_path)
        with pytest.raises(ValueError, match="study identity"):
            SessionRecord(study_identity=key)


def test_a_file_of_another_study_is_neither_restored_nor_overwritten(tmp_path):
    """Whatever put it there (a copy, a rename, a bug), a session file is only ever read back
    for, and written over by, the study it names inside."""
    theirs = _record(study=OTHER_STUDY, tag="theirs")
    path = session_path(STUDY, tmp_path)
    save_atomic(theirs, path)
    with pytest.raises(ValueError, match="belongs to another study"):
        load_session(STUDY, tmp_path)
    with pytest.raises(ValueError, match="belongs to another study"):
        save_session(_record(tag="ours"), tmp_path)
    assert load_record(path) == theirs


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b'{"format": "birdview-session", "schema_ver', "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b'{"hello": 1}', "not a BirdView session"),
        (b'{"format": "birdview-session", "schema_version": 99}', "schema version 99"),
        (
            b'{"format": "birdview-session", "schema_version": 2, "study_identity": "k"}',
            "study identity",
        ),
        (
            b'{"format": "birdview-session", "schema_version": 1, "study_key": "k",'
            b' "turns": [{"question": "q", "answer": "a"}]}',
            "older BirdView that did not record which study",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"format": "birdview-session", "a": 1' + b"1" * 5000 + b"}", "digits"),
    ],
)
def test_damaged_file_raises_value_error(tmp_path, content, match):
    path = tmp_path / "session-x.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        load_record(path)


def test_killed_writer_leaves_a_complete_file(tmp_path):
    path = tmp_path / "session-big.json"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from tests.core.test_session_store import _record
        from birdview.core.session_store import save_atomic
        records = [_record(3000, tag=f"v{{n}}") for n in range(2)]
        n = 0
        while True:
            save_atomic(records[n % 2], {str(path)!r})
            n += 1
            print(n, flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(3):  # a few complete saves, then kill it while it is writing
            assert proc.stdout.readline()
        time.sleep(0.013)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    record = load_record(path)
    tags = {t.question.split()[-2] for t in record.turns}
    assert len(record.turns) == 3000 and len(tags) == 1 and tags <= {"v0", "v1"}


def _turn_json(**changes) -> bytes:
    turn = {"question": "q", "answer": "a", "slice_index": 3, "boxes": []}
    turn.update(changes)
    data = {
        "format": "birdview-session",
        "schema_version": 2,
        "study_identity": STUDY,
        "turns": [turn],
    }
    return json.dumps(data).encode()


_BOX = {"plane": "axial", "slice_index": 1, "x1_px": 1, "y1_px": 2, "x2_px": 3, "y2_px": 4}


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (_turn_json(question={"nested": "object"}), "'question' is 'dict'"),
        (_turn_json(slice_index=1e400), "'slice_index' is 'float'"),
        (_turn_json(slice_index=True), "'slice_index' is 'bool'"),
        (_turn_json(slice_index=-4), "negative"),
        (_turn_json(boxes=[{**_BOX, "x2_px": float("nan")}]), "'x2_px' is nan"),
        (_turn_json(boxes=[{**_BOX, "y1_px": float("-inf")}]), "'y1_px' is -inf"),
        (_turn_json(boxes=[{**_BOX, "x1_px": "1"}]), "'x1_px' is 'str'"),
        (_turn_json(boxes=[{**_BOX, "plane": "oblique"}]), "oblique"),
        (_turn_json(boxes=[{**_BOX, "score": float("inf")}]), "'score' is inf"),
        (_turn_json(boxes=[7]), "a box is 'int'"),
        (_turn_json(region=[1, 2]), "'region' is 'list'"),
    ],
)
def test_hostile_values_are_refused_with_the_file_named(tmp_path, content, match):
    path = tmp_path / "session-x.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as caught:
        load_record(path)
    assert "'session-x.json'" in str(caught.value)


def test_a_huge_file_is_refused_without_reading_it_all(tmp_path):
    path = tmp_path / "session-big.json"
    with open(path, "wb") as file:
        file.truncate(MAX_SESSION_BYTES * 4)  # sparse: costs no disk
    with pytest.raises(ValueError, match="larger than 64 MB"):
        load_record(path)


def test_warnings_beside_an_answer_are_saved_and_refused_when_mistyped(tmp_path):
    warned = RecordedTurn(
        question="Where is the wrist?",
        answer="",
        warnings=("This model was trained on CT only; this study is MR",),
    )
    record = SessionRecord(study_identity=STUDY, turns=(warned, *_record(1).turns))
    path = save_session(record, tmp_path)
    loaded = load_record(path)
    assert loaded == record and loaded.turns[1].warnings == ()
    data = json.loads(path.read_text(encoding="utf-8"))
    data["turns"][0]["warnings"] = [3]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match=r"a warning is 'int'"):
        load_record(path)


def test_hidden_boxes_are_saved_with_the_session_and_checked(tmp_path):
    """Which answers' boxes are hidden (and whether all are) travels in the study's own
    session file; a file from before they were kept shows every box; wrong values are refused
    with the file named."""
    record = replace(_record(3), hidden_answers=(2, 0), all_boxes_hidden=True)
    assert record.hidden_answers == (0, 2)
    path = save_session(record, tmp_path)
    loaded = load_session(STUDY, tmp_path)
    assert loaded == record and loaded.hidden_answers == (0, 2) and loaded.all_boxes_hidden
    theirs = replace(_record(3, study=OTHER_STUDY), hidden_answers=(1,))
    save_atomic(theirs, tmp_path / "elsewhere.json")
    os.replace(tmp_path / "elsewhere.json", path)  # another study's file where ours was
    with pytest.raises(ValueError, match="belongs to another study"):
        load_session(STUDY, tmp_path)
    save_atomic(record, path)
    data = json.loads(path.read_text(encoding="utf-8"))
    del data["hidden_answers"], data["all_boxes_hidden"]
    path.write_text(json.dumps(data), encoding="utf-8")
    older = load_record(path)
    assert older.hidden_answers == () and older.all_boxes_hidden is False
    for bad, match in (
        ([3], "answer 3 as the session has 3 answers"),
        ([-1], "answer -1"),
        ([True], "a hidden answer is 'bool'"),
        (["1"], "a hidden answer is 'str'"),
    ):
        data["hidden_answers"] = bad
        path.write_text(json.dumps(data), encoding="utf-8")
        with pytest.raises(ValueError, match=match) as caught:
            load_record(path)
        assert path.name in str(caught.value)
    data["hidden_answers"], data["all_boxes_hidden"] = [], "yes"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="'all_boxes_hidden' is 'str'"):
        load_record(path)
