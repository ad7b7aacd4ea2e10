"""URLs, saved settings (no secrets in them) and the LRU study cache, on real files."""

from __future__ import annotations

import json
import os

import pytest

from birdview.pacs.cache import StudyCache
from birdview.pacs.credentials import load_secret, save_secret
from birdview.pacs.files import write_instance
from birdview.pacs.settings import load_servers, parse_url, save_servers


def test_dicom_url():
    server = parse_url("dicom://PACS_1@pacs.example.org:11112", calling_ae="READER")
    assert (server.kind, server.called_ae, server.host, server.port) == (
        "dimse", "PACS_1", "pacs.example.org", 11112)  # fmt: skip
    assert server.calling_ae == "READER" and server.url == "dicom://PACS_1@pacs.example.org:11112"


def test_dicomweb_url():
    server = parse_url("https://pacs.example.org/orthanc/dicom-web/")
    assert (server.kind, server.port, server.root, server.tls) == (
        "dicomweb", 443, "/orthanc/dicom-web", True)  # fmt: skip
    assert server.url == "https://pacs.example.org:443/orthanc/dicom-web"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://host:1", "must start with dicom://"),
        ("dicom://host:104", "needs the called AE title"),
        ("dicom://AE@host", "needs a port"),
        ("dicom://AE@host:99999", "port is not a number"),
        ("dicom://THIS_AE_TITLE_IS_TOO_LONG@host:104", "1 to 16 printable characters"),
        ("http:///dicom-web", "names no host"),
    ],
)
def test_bad_urls_say_what_is_wrong(url, words):
    with pytest.raises(ValueError, match=words):
        parse_url(url)


def test_saved_servers_keep_no_secret(tmp_path):
    server = parse_url("http://pacs:8042/dicom-web", auth="basic", username="alice", name="Ward")
    save_secret(server, "hunter2-secret")
    path = tmp_path / "servers.json"
    save_servers(path, [server, parse_url("dicom://ORTHANC@pacs:4242")])
    assert "hunter2-secret" not in path.read_text()
    loaded = load_servers(path)
    assert loaded[0] == server and loaded[1].kind == "dimse"
    assert load_secret(loaded[0]) == "hunter2-secret"


def test_a_damaged_server_list_names_the_file(tmp_path):
    path = tmp_path / "servers.json"
    path.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(ValueError, match="servers.json: not a list of PACS servers"):
        load_servers(path)


def _fill(cache: StudyCache, uid: str, size: int) -> None:
    write_instance(cache.folder_for(uid), "1.2", f"{uid}.9", os.urandom(size))


def test_cache_evicts_the_least_recently_used(tmp_path):
    cache = StudyCache(tmp_path, limit_bytes=25_000)
    for uid in ("1.1", "1.2", "1.3"):
        _fill(cache, uid, 10_000)
    cache.touch("1.1")  # reopened: now the most recent
    assert cache.evict(keep="1.3") == ["1.2"]
    assert sorted(uid for uid, _, _ in cache.studies()) == ["1.1", "1.3"]
    assert cache.total_bytes() <= 25_000


def test_cache_never_evicts_the_study_being_read(tmp_path):
    cache = StudyCache(tmp_path, limit_bytes=1_000)
    _fill(cache, "1.5", 5_000)
    _fill(cache, "1.6", 5_000)
    assert cache.evict(keep="1.5") == ["1.6"]
    assert [uid for uid, _, _ in cache.studies()] == ["1.5"]


def test_a_server_cannot_steer_file_names(tmp_path):
    with pytest.raises(ValueError, match="not a DICOM UID"):
        write_instance(tmp_path, "1.2", "../../etc/passwd", b"x")
    assert write_instance(tmp_path, "1.2", "1.2.3", b"first") is True
    assert write_instance(tmp_path, "1.2", "1.2.3", b"second") is False  # no duplicate, no rewrite
    assert (tmp_path / "1.2" / "1.2.3.dcm").read_bytes() == b"first"


def test_without_orthanc_the_server_fixture_fails_with_the_install_line(tmp_path, monkeypatch):
    from tests.pacs import orthanc as orthanc_server

    monkeypatch.setattr(orthanc_server.shutil, "which", lambda name: None)
    monkeypatch.setattr(orthanc_server, "BINARY_CANDIDATES", (str(tmp_path / "Orthanc"),))
    with pytest.raises(RuntimeError, match="apt-get install -y orthanc orthanc-dicomweb"):
        orthanc_server.start(tmp_path)


def test_tls_follows_the_scheme_over_http_and_the_setting_over_dicom():
    assert parse_url("http://pacs:8042/dicom-web", tls=True).tls is False
    assert parse_url("https://pacs/dicom-web", tls=False).tls is True
    assert parse_url("dicom://AE@pacs:2762", tls=True).tls is True
    assert parse_url("dicom://AE@pacs:104").tls is False


def test_retrieve_choice_and_move_ae_are_checked_and_saved(tmp_path):
    with pytest.raises(ValueError, match="retrieve by 'fetch'"):
        parse_url("dicom://PACS@host:104", retrieve_by="fetch")
    with pytest.raises(ValueError, match="1 to 16 printable characters"):
        parse_url("dicom://PACS@host:104", move_ae="A MOVE AE TITLE TOO LONG")
    server = parse_url("dicom://PACS@host:104", retrieve_by="move", move_ae="VIEWER", name="p")
    path = tmp_path / "servers.json"
    save_servers(path, [server])
    assert load_servers(path) == [server]
    rows = json.loads(path.read_text())
    del rows[0]["retrieve_by"]  # a list saved before the choice existed
    path.write_text(json.dumps(rows))
    assert load_servers(path)[0].retrieve_by == "get"
