"""`write_atomic`: the one way BirdView and the trainer replace a file."""

from __future__ import annotations

import os
import stat

import pytest

from birdview.core.files import write_atomic


def test_writes_bytes_text_and_chunks(tmp_path):
    path = tmp_path / "out.txt"
    write_atomic(path, b"bytes")
    assert path.read_bytes() == b"bytes"
    write_atomic(path, "tëxt")
    assert path.read_text(encoding="utf-8") == "tëxt"
    write_atomic(path, (part for part in ["a", b"b", "ç"]))
    assert path.read_text(encoding="utf-8") == "abç"


def test_a_failing_generator_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.json"
    write_atomic(path, "old")

    def chunks():
        yield "new, half"
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, chunks())
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.json"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_private_by_default_and_mode_less_the_umask(tmp_path):
    write_atomic(tmp_path / "session.json", "{}")
    assert stat.S_IMODE((tmp_path / "session.json").stat().st_mode) == 0o600
    umask = os.umask(0o022)
    try:
        write_atomic(tmp_path / "export.png", b"png", mode=0o666)
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "export.png").stat().st_mode) == 0o644
