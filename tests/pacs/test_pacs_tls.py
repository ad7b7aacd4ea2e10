"""TLS against a real Orthanc: DICOM TLS and HTTPS, trusted through a given CA file, and a
plain-words refusal when the certificate cannot be checked (the system store lacks the test CA)."""

from __future__ import annotations

import json

import pytest

from birdview.pacs.client import StudyQuery
from birdview.pacs.connection import connect
from birdview.pacs.credentials import save_secret
from birdview.pacs.errors import PacsError
from birdview.pacs.settings import parse_url
from tests.pacs import orthanc as orthanc_server


def _dimse(orthanc, **extra):
    return parse_url(orthanc.dicom_url, tls=True, timeout=10, **extra)


def _web(orthanc, **extra):
    server = parse_url(orthanc.web_url, auth="basic", username=orthanc_server.USER, **extra)
    save_secret(server, orthanc_server.PASSWORD)
    return server


def _uids(studies) -> list[str]:
    return [s["StudyInstanceUID"] for s in studies]


def test_dicom_tls_with_the_ca_file(secure_orthanc, sample_study):
    client = connect(_dimse(secure_orthanc, ca_file=secure_orthanc.ca_file))
    client.echo()
    assert _uids(client.find_studies(StudyQuery())) == [sample_study["study_uid"]]


def test_https_with_the_ca_file(secure_orthanc, sample_study, tmp_path):
    client = connect(_web(secure_orthanc, ca_file=secure_orthanc.ca_file))
    assert secure_orthanc.web_url.startswith("https://")
    client.echo()
    assert _uids(client.find_studies(StudyQuery())) == [sample_study["study_uid"]]
    assert client.retrieve(sample_study["study_uid"], str(tmp_path)).received == 16


def test_an_untrusted_certificate_is_refused_in_plain_words(secure_orthanc):
    with pytest.raises(PacsError, match="TLS check failed.*CERTIFICATE_VERIFY_FAILED"):
        connect(_dimse(secure_orthanc)).echo()
    with pytest.raises(PacsError, match="TLS check failed"):
        connect(_web(secure_orthanc)).echo()


def test_plain_dicom_to_a_tls_port_fails_cleanly(secure_orthanc):
    server = parse_url(secure_orthanc.dicom_url, timeout=5)
    with pytest.raises(PacsError, match="could not connect|aborted|no answer"):
        connect(server).echo()


def test_bearer_token_from_the_keyring_over_https(secure_orthanc):
    server = parse_url(secure_orthanc.web_url, auth="bearer", ca_file=secure_orthanc.ca_file)
    with pytest.raises(PacsError, match="keyring holds no bearer token"):
        connect(server)
    save_secret(server, "not-the-token")
    with pytest.raises(PacsError, match="HTTP 401"):
        connect(server).echo()
    save_secret(server, orthanc_server.BEARER_TOKEN)
    connect(server).echo()


def test_cli_login_and_find_with_a_bearer_token(secure_orthanc, sample_study, capsys, monkeypatch):
    import io

    from birdview.__main__ import main

    url, ca = secure_orthanc.web_url, secure_orthanc.ca_file
    monkeypatch.setattr("sys.stdin", io.StringIO(orthanc_server.BEARER_TOKEN + "\n"))
    assert main(["pacs", "login", url, "--bearer"]) == 0
    assert "kept in the system keyring" in capsys.readouterr().out
    assert main(["pacs", "find", url, "--bearer", "--ca-file", ca, "--json"]) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert _uids(found) == [sample_study["study_uid"]]


def test_the_browser_form_carries_tls_ca_file_and_timeout(qapp, tmp_path, secure_orthanc):
    from birdview.pacs.cache import StudyCache
    from birdview.ui.pacs_browser import PacsBrowser

    browser = PacsBrowser(str(tmp_path / "servers.json"), StudyCache(tmp_path, 10**9),
                          lambda folder: None, lambda: None)  # fmt: skip
    browser.url_edit.setText(secure_orthanc.dicom_url)
    browser.tls_box.setChecked(True)
    browser.ca_edit.setText(secure_orthanc.ca_file)
    browser.timeout_box.setValue(12)
    browser.save_server()
    server = browser.server()
    assert (server.tls, server.ca_file, server.timeout) == (True, secure_orthanc.ca_file, 12.0)
    connect(server).echo()  # the form's settings reach a DICOM TLS server
    reopened = PacsBrowser(str(tmp_path / "servers.json"), StudyCache(tmp_path, 10**9),
                           lambda folder: None, lambda: None)  # fmt: skip
    assert reopened.tls_box.isChecked() and reopened.ca_edit.text() == secure_orthanc.ca_file
    assert reopened.timeout_box.value() == 12
    browser.close()
    reopened.close()
