"""The PACS browser's server settings against the real Orthanc: retrieval by C-MOVE chosen in
the form, deleting a saved server (and its secret), and the local cache's size limit."""

from __future__ import annotations

import json
import math
import os
import shutil

import pytest
from PySide6.QtCore import QSettings

from birdview.pacs.cache import StudyCache
from birdview.pacs.credentials import load_secret, save_secret
from birdview.pacs.errors import PacsError
from birdview.pacs.settings import parse_url
from birdview.ui.pacs_browser import PacsBrowser
from tests.pacs import orthanc as orthanc_server
from tests.pacs.conftest import sample_files
from tests.ui.test_refer_ground import wait_for


@pytest.fixture(autouse=True)
def _private_settings(tmp_path, monkeypatch):
    from PySide6.QtCore import QCoreApplication

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "ini"))
    QCoreApplication.setOrganizationName("BirdViewTests")
    QCoreApplication.setApplicationName("BirdViewTests")


@pytest.fixture
def browser(qapp, tmp_path):
    opened: list[str] = []
    browser = PacsBrowser(
        str(tmp_path / "servers.json"),
        StudyCache(tmp_path / "cache", int(5e9)),
        opened.append,
        lambda: None,
    )
    browser.opened = opened
    yield browser
    browser.close()


def _search_and_select(browser, patient_id: str) -> None:
    browser.search_edits["patient_id"].setText(patient_id)
    browser.search_button.click()
    wait_for(lambda: not browser.runner.busy)
    browser.study_table.selectRow(0)
    wait_for(lambda: not browser.runner.busy)


def _choose_move(browser, orthanc, move_ae: str = "") -> None:
    form = browser.form
    browser.url_edit.setText(orthanc.dicom_url)
    form.retrieve_box.setCurrentIndex(form.retrieve_box.findText("C-MOVE"))
    form.storage_port_box.setValue(orthanc.storage_port)
    form.move_ae_edit.setText(move_ae)


def test_retrieve_by_c_move_chosen_in_the_form(browser, orthanc, sample_study):
    _choose_move(browser, orthanc, move_ae="NOBODY")  # a destination Orthanc does not know
    assert browser.form.storage_port_box.isEnabled()
    _search_and_select(browser, sample_study["patient_id"])
    browser.retrieve_button.click()
    wait_for(lambda: not browser.runner.busy, 60)
    assert "NOBODY" in browser.status.text()  # the move was asked for, and refused
    assert browser.opened == []

    browser.form.move_ae_edit.setText("")  # our calling AE, which Orthanc knows
    browser.save_server()
    browser.retrieve_button.click()
    wait_for(lambda: not browser.runner.busy, 60)
    assert "16 images in the local cache (16 retrieved" in browser.status.text()
    folder = browser.cache.root / sample_study["study_uid"]
    assert len(list(folder.glob("*/*.dcm"))) == 16 and len(browser.opened) == 1

    saved = json.loads(open(browser.servers_path).read())
    assert (saved[0]["retrieve_by"], saved[0]["storage_port"]) == ("move", orthanc.storage_port)
    browser.form.retrieve_box.setCurrentIndex(0)  # the saved choice comes back with the server
    browser._reload_servers()
    assert browser.form.retrieve_box.currentText() == "C-MOVE"
    assert browser.form.storage_port_box.value() == orthanc.storage_port


def test_deleting_a_saved_server_forgets_its_password(browser, orthanc, sample_study):
    browser.url_edit.setText(orthanc.dicom_url)
    browser.save_server()
    browser.server_box.setCurrentIndex(-1)  # a new entry, not the saved one renamed
    browser.url_edit.setText(orthanc.web_url)
    browser.auth_box.setCurrentText("basic")
    browser.user_edit.setText(orthanc_server.USER)
    browser.save_server()
    web = parse_url(orthanc.web_url, auth="basic", username=orthanc_server.USER)
    save_secret(web, orthanc_server.PASSWORD)
    _search_and_select(browser, sample_study["patient_id"])  # the saved login works
    assert len(browser.studies) == 1
    assert browser.server_box.count() == 2

    browser.server_box.setCurrentIndex(browser.server_box.findText(orthanc.web_url))
    browser.delete_button.click()
    assert browser.status.text() == f"Deleted {orthanc.web_url}"
    assert [s["called_ae"] for s in json.loads(open(browser.servers_path).read())] == ["ORTHANC"]
    assert [browser.server_box.itemText(i) for i in range(browser.server_box.count())] == [
        orthanc.dicom_url
    ]
    assert browser.url_edit.text() == orthanc.dicom_url
    with pytest.raises(PacsError, match="holds no password"):
        load_secret(web)


def test_the_cache_limit_field_evicts_the_least_recently_used(
    browser, orthanc, sample_study, tmp_path
):
    from birdview.ui.pacs_controls import _cache_limit_bytes

    cache = browser.cache
    for n, name in enumerate(("1.2.3.1", "1.2.3.2")):  # two earlier studies, 2 MB each
        folder = cache.folder_for(name)
        for path in sample_files():
            shutil.copy(path, folder / path.name)
        (folder / ".last-used").write_text(str(1000 - n))
    browser.url_edit.setText(orthanc.dicom_url)
    _search_and_select(browser, sample_study["patient_id"])
    browser.retrieve_button.click()
    wait_for(lambda: not browser.runner.busy, 60)
    sizes = {uid: size for uid, _, size in cache.studies()}
    assert set(sizes) == {"1.2.3.1", "1.2.3.2", sample_study["study_uid"]}

    # Room for the newest two (the field counts in MB steps), not the third.
    limit = math.ceil((sizes[sample_study["study_uid"]] + sizes["1.2.3.1"]) / 1e6) / 1e3
    assert limit * 1e9 < sum(sizes.values())
    browser.cache_box.setValue(limit)
    browser.cache_box.editingFinished.emit()
    assert {uid for uid, _, _ in cache.studies()} == {"1.2.3.1", sample_study["study_uid"]}
    assert "1 studies removed" in browser.status.text()
    assert float(QSettings().value("pacs/cache_limit_gb")) == pytest.approx(limit)
    assert _cache_limit_bytes() == pytest.approx(browser.cache_box.value() * 1e9)
    assert os.path.isdir(cache.root / sample_study["study_uid"])
