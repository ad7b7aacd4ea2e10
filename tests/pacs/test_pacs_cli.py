"""``birdview pacs`` against the real Orthanc over both URL kinds: the acceptance contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from birdview.__main__ import main
from tests.conftest import REPO
from tests.pacs import orthanc as orthanc_server
from tests.pacs.helpers import open_study, write_sr


def _url_and_login(orthanc, protocol: str) -> list[str]:
    if protocol == "dimse":
        return [orthanc.dicom_url, "--storage-port", str(orthanc.storage_port)]
    return [orthanc.web_url, "--user", orthanc_server.USER]


def _birdview(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """The real entry point in a fresh process, sharing the test's keyring file."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "birdview", *args],
        input=stdin, capture_output=True, text=True, env=env, timeout=120, cwd=REPO,
    )  # fmt: skip


@pytest.fixture
def logged_in(orthanc):
    """``birdview pacs login`` keeps the DICOMweb password in the keyring, read from stdin."""
    done = _birdview("pacs", "login", orthanc.web_url, "--user", orthanc_server.USER,
                     stdin=orthanc_server.PASSWORD + "\n")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "kept in the system keyring" in done.stdout
    return orthanc


@pytest.mark.parametrize("protocol", ["dimse", "dicomweb"])
def test_echo_find_get_store(logged_in, protocol, sample_study, tmp_path, capsys):
    orthanc, target = logged_in, _url_and_login(logged_in, protocol)
    assert main(["pacs", "echo", *target]) == 0
    assert "answers" in capsys.readouterr().out

    found = _birdview("pacs", "find", *target, "--patient-id", sample_study["patient_id"],
                      "--modality", sample_study["modality"], "--json")  # fmt: skip
    assert found.returncode == 0, found.stderr
    studies = [json.loads(line) for line in found.stdout.splitlines()]
    assert [s["StudyInstanceUID"] for s in studies] == [sample_study["study_uid"]]

    out = tmp_path / "study"
    assert main(["pacs", "get", *target, sample_study["study_uid"], "--out", str(out)]) == 0
    assert "16 instances in" in capsys.readouterr().out
    assert {p.stem for p in out.glob("*/*.dcm")} == sample_study["sop_uids"]
    catalog, volume = open_study(out)
    assert len(volume.sources) == 16 and not catalog.problems

    sr_uid = write_sr(out, tmp_path / "sr.dcm")
    try:
        assert main(["pacs", "store", *target, str(tmp_path / "sr.dcm")]) == 0
        assert "1 instances sent" in capsys.readouterr().out
        assert sr_uid in orthanc.instance_uids()
    finally:
        orthanc.forget(sr_uid)


def test_get_by_c_move(orthanc, sample_study, tmp_path, capsys):
    args = ["pacs", "get", *_url_and_login(orthanc, "dimse"), sample_study["study_uid"]]
    assert main([*args, "--out", str(tmp_path), "--move"]) == 0
    assert {p.stem for p in tmp_path.glob("*/*.dcm")} == sample_study["sop_uids"]


def _fails(argv: list[str], capsys, code: int = 1) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_failures_exit_non_zero_with_one_line(orthanc, sample_study, tmp_path, capsys):
    down = f"dicom://ORTHANC@127.0.0.1:{orthanc_server.free_port()}"
    assert "could not connect" in _fails(["pacs", "echo", down], capsys)
    wrong_ae = orthanc.dicom_url.replace("ORTHANC@", "PACS@")
    assert "Called AE title not recognised" in _fails(["pacs", "echo", wrong_ae], capsys)
    dimse = _url_and_login(orthanc, "dimse")
    err = _fails(["pacs", "get", *dimse, "1.2.3.999", "--out", str(tmp_path)], capsys)
    assert "no instances of study 1.2.3.999" in err
    err = _fails(["pacs", "get", *dimse, sample_study["study_uid"], "--out", str(tmp_path),
                  "--move", "--move-ae", "NOBODY"], capsys)  # fmt: skip
    assert "refused to send to NOBODY" in err
    assert "no such file" in _fails(["pacs", "store", *dimse, str(tmp_path / "x.dcm")], capsys)
    assert "HTTP 401" in _fails(["pacs", "echo", orthanc.web_url], capsys)
    assert "must start with dicom://" in _fails(["pacs", "echo", "ftp://x:1"], capsys, code=2)
    assert not list(tmp_path.rglob("*.dcm"))
