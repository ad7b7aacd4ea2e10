"""Session records: JSON round trip, atomic saves that survive a killed writer, damaged files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from birdview.core.box import Box
from birdview.core.session_store import (
    ModelInfo,
    RecordedTurn,
    SessionRecord,
    load_record,
    save_atomic,
    session_path,
)

REPO = Path(__file__).resolve().parents[2]


def _record(n_turns: int = 2, tag: str = "v1") -> SessionRecord:
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
        study_key="e5cfccd8",
        study_paths=("/data/ct",),
        series_description="CT Body 3.0",
        model=ModelInfo("BiRD-7B", "bird", "bf16"),
        created_at="2024-05-01T10:00:00+00:00",
        updated_at="2024-05-01T10:05:00+00:00",
        turns=turns,
        user_boxes=(Box("coronal", 3, 0, 0, 5, 5, flags=("clamped",)),),
    )


def test_round_trip(tmp_path):
    record = _record()
    path = session_path(record.study_key, tmp_path)
    save_atomic(record, path)
    assert load_record(path) == record
    assert SessionRecord.from_json(record.to_json()) == record


def test_session_path_is_patient_free(tmp_path):
    assert session_path("e5cfccd8", tmp_path) == tmp_path / "session-e5cfccd8.json"
    name = session_path("DOE^J1 583295", tmp_path).name
    assert "DOE" not in name and "583295" not in name


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b'{"format": "birdview-session", "schema_ver', "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b'{"hello": 1}', "not a BirdView session"),
        (b'{"format": "birdview-session", "schema_version": 99}', "schema version 99"),
        (
            b'{"format": "birdview-session", "schema_version": 1, "study_key": "k",'
            b' "turns": [{"question": "q"}]}',
            "missing or malformed",
        ),
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
