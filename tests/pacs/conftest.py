"""A real Orthanc per test run, loaded with the bundled sample MR study (16 instances)."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from tests.pacs import orthanc as orthanc_server
from tests.ui.model_fixture import taught_model  # noqa: F401 - for the browser's ask

SAMPLE_MR = Path(__file__).resolve().parents[2] / "resources" / "samples" / "dcm4che_mr"


def sample_files() -> list[Path]:
    return sorted(SAMPLE_MR.glob("*.dcm"))


@pytest.fixture(scope="session")
def sample_study() -> dict:
    """The sample's identity, read from its files (not copied into the tests)."""
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in sample_files()]
    first = headers[0]
    return {
        "study_uid": str(first.StudyInstanceUID),
        "patient_name": str(first.PatientName),
        "patient_id": str(first.PatientID),
        "sop_uids": {str(h.SOPInstanceUID) for h in headers},
        "modality": str(first.Modality),
        "study_date": str(first.StudyDate),
        "accession": str(first.AccessionNumber),
    }


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory):
    """Debian's Orthanc on free ports with a temporary storage folder; fails (not skips)
    when Orthanc is not installed."""
    try:
        server = orthanc_server.start(tmp_path_factory.mktemp("orthanc"))
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        for path in sample_files():
            server.rest("/instances", data=path.read_bytes())
        yield server
    finally:
        orthanc_server.stop(server)


@pytest.fixture(scope="session")
def secure_orthanc(tmp_path_factory):
    """A second Orthanc with the sample MR, speaking DICOM TLS, its DICOMweb behind an HTTPS
    front that also takes a bearer token; certificates from a test CA."""
    try:
        server = orthanc_server.start(tmp_path_factory.mktemp("orthanc-tls"), tls=True)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        for path in sample_files():
            server.rest("/instances", data=path.read_bytes())
        yield server
    finally:
        orthanc_server.stop(server)


@pytest.fixture(autouse=True)
def test_keyring(tmp_path, monkeypatch):
    """Secrets go to a file-backed keyring (no OS keyring runs here), visible to CLI
    subprocesses too; the previous keyring comes back afterwards."""
    import keyring

    from tests.pacs.file_keyring import FileKeyring

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "tests.pacs.file_keyring.FileKeyring")
    monkeypatch.setenv("BIRDVIEW_TEST_KEYRING", str(tmp_path / "keyring.json"))
    before = keyring.get_keyring()
    keyring.set_keyring(FileKeyring())
    yield
    keyring.set_keyring(before)
