"""The PACS browser in the real window against the real Orthanc: search, retrieve with
progress, open, ask the tiny taught model, send the results back, find them in Orthanc."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pydicom
import pytest
from PySide6.QtCore import QSettings

from birdview.core.box import Box
from birdview.pacs.client import StudyQuery
from tests.pacs import orthanc as orthanc_server
from tests.pacs.conftest import SAMPLE_MR
from tests.pacs.helpers import client_for
from tests.ui.test_refer_ground import last_turn, wait_for
from tests.ui.test_study_isolation import MR_QUESTION, load_model, new_window


@pytest.fixture(autouse=True)
def _private_settings(tmp_path, monkeypatch):
    """Settings, config and cache folders of this test only (as tests/ui do)."""
    from PySide6.QtCore import QCoreApplication

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "ini"))
    QCoreApplication.setOrganizationName("BirdViewTests")
    QCoreApplication.setApplicationName("BirdViewTests")


@pytest.fixture
def window(qapp, tmp_path):
    window = new_window(tmp_path)
    yield window
    window.close()


def _browser_on(window, url: str, auth: str = "none", user: str = ""):
    browser = window.pacs.show()
    browser.url_edit.setText(url)
    browser.auth_box.setCurrentText(auth)
    browser.user_edit.setText(user)
    return browser


def _search(browser, patient_id: str) -> None:
    browser.search_edits["patient_id"].setText(patient_id)
    browser.search_button.click()
    wait_for(lambda: not browser.runner.busy)


def test_search_retrieve_open_ask_and_send_the_sr_back(
    window, orthanc, sample_study, taught_model, tmp_path
):
    browser = _browser_on(window, orthanc.dicom_url)
    browser.save_server()
    saved = json.loads(Path(browser.servers_path).read_text())
    assert [s["called_ae"] for s in saved] == ["ORTHANC"]

    _search(browser, sample_study["patient_id"])
    assert [s["StudyInstanceUID"] for s in browser.studies] == [sample_study["study_uid"]]
    assert browser.study_table.item(0, 1).text() == sample_study["patient_id"]
    window.pacs.set_presenter(True)  # presenter mode hides name, ID, date and accession
    table = browser.study_table
    shown = [
        table.item(0, c).text() for c in range(table.columnCount()) if not table.isColumnHidden(c)
    ]
    study = pydicom.dcmread(sorted(SAMPLE_MR.glob("*.dcm"))[0], stop_before_pixels=True)
    identity = (
        study.PatientID,
        study.StudyDate,
        study.AccessionNumber,
        *study.PatientName.components,
    )
    assert not [text for text in shown for value in identity if value and value in text], shown
    assert shown  # modality, description and counts are still there to choose by
    window.pacs.set_presenter(False)
    assert not browser.study_table.isColumnHidden(1)

    steps = []
    browser.runner.progressed.connect(lambda done, total: steps.append((done, total)))
    browser.study_table.selectRow(0)
    wait_for(lambda: not browser.runner.busy)
    assert browser.series_table.rowCount() == 1
    browser.retrieve_button.click()
    wait_for(lambda: window.session.volume is not None and not browser.runner.busy, 60)
    wait_for(lambda: not window.loader.busy)
    assert steps[-1] == (16, 16) and len(steps) == 16
    assert (browser.progress.value(), browser.progress.maximum()) == (16, 16)
    assert "16 images in the local cache (16 retrieved" in browser.status.text()
    volume = window.session.volume
    assert len(volume.sources) == 16
    assert {pydicom.dcmread(s.path).SOPInstanceUID for s in volume.sources} == sample_study[
        "sop_uids"
    ]
    assert str(browser.cache.root) in volume.sources[0].path

    load_model(window, taught_model)  # ask about a region of the retrieved study
    plane = window.session.main_plane
    index = window.session.slice_index(plane)
    window.assistant.set_user_box(Box(plane, index, 60, 60, 160, 140, label="drawn"))
    wait_for(window.chat_panel.what_button.isEnabled)
    window.chat_panel.what_button.click()
    assert last_turn(window).state == "done"

    before = orthanc.instance_uids()
    browser.send_button.click()
    wait_for(lambda: not browser.runner.busy, 60)
    new = orthanc.instance_uids() - before
    try:
        sent = [pydicom.dcmread(io.BytesIO(orthanc.instance_file(uid))) for uid in new]
        kinds = sorted(d.Modality for d in sent)
        assert kinds == ["OT", "SR"], browser.status.text()  # no key image: the view as an SC
        assert browser.status.text().startswith("Sent SR + 1 secondary capture")
        assert (browser.progress.value(), browser.progress.maximum()) == (2, 2)
        assert {d.StudyInstanceUID for d in sent} == {sample_study["study_uid"]}
        sr = next(d for d in sent if d.Modality == "SR")
        assert MR_QUESTION in str(sr.ContentSequence)
        found = client_for(orthanc, "dicomweb").find_studies(
            StudyQuery(study_uid=sample_study["study_uid"])
        )
        assert found[0]["ModalitiesInStudy"].split("\\").count("SR") == 1
    finally:
        for uid in new:
            orthanc.forget(uid)


def test_cancel_then_resume_over_dicomweb(window, orthanc, sample_study):
    from birdview.pacs.credentials import save_secret
    from birdview.pacs.settings import parse_url

    server = parse_url(orthanc.web_url, auth="basic", username=orthanc_server.USER)
    save_secret(server, orthanc_server.PASSWORD)
    browser = _browser_on(window, orthanc.web_url, "basic", orthanc_server.USER)
    _search(browser, sample_study["patient_id"])
    browser.study_table.selectRow(0)
    wait_for(lambda: not browser.runner.busy)

    def cancel_at_four(done: int, total: int) -> None:
        if done == 4:
            browser.cancel_button.click()

    browser.runner.progressed.connect(cancel_at_four)
    browser.retrieve_button.click()
    wait_for(lambda: not browser.runner.busy, 60)
    assert "cancelled" in browser.status.text()
    folder = browser.cache.root / sample_study["study_uid"]
    kept = len(list(folder.glob("*/*.dcm")))
    assert 4 <= kept < 16 and window.session.volume is None  # nothing opened half-way
    browser.runner.progressed.disconnect(cancel_at_four)

    browser.retrieve_button.click()
    wait_for(lambda: window.session.volume is not None and not browser.runner.busy, 60)
    assert f"({16 - kept} retrieved, {kept} already there)" in browser.status.text()
    assert len(list(folder.glob("*/*.dcm"))) == 16
    wait_for(lambda: not window.loader.busy)
    assert len(window.session.volume.sources) == 16


@pytest.fixture
def two_series_study(orthanc):
    """The sample MR's slices filed as a study of two series (8 + 8), under another patient,
    so the first series can open while the second is still on its way."""
    from pydicom.uid import generate_uid

    from tests.pacs.conftest import sample_files

    study_uid, series = generate_uid(), (generate_uid(), generate_uid())
    sop_uids = []
    for n, path in enumerate(sample_files()):
        ds = pydicom.dcmread(path)
        ds.PatientID, ds.PatientName = "BV-TWO-SERIES", "TWO^SERIES"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series[n // 8]
        ds.SeriesNumber = 1 + n // 8
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        buffer = io.BytesIO()
        ds.save_as(buffer)
        orthanc.rest("/instances", data=buffer.getvalue())
        sop_uids.append(str(ds.SOPInstanceUID))
    yield study_uid, series
    for uid in sop_uids:
        orthanc.forget(uid)


def test_the_first_series_opens_while_the_second_arrives(window, orthanc, two_series_study):
    study_uid, (first, second) = two_series_study
    browser = _browser_on(window, orthanc.dicom_url)
    _search(browser, "BV-TWO-SERIES")
    browser.study_table.selectRow(0)
    wait_for(lambda: not browser.runner.busy)
    assert browser.series_table.rowCount() == 2

    opened = []  # (loader busy, images arrived) each time the window starts opening
    window.loader.busy_changed.connect(
        lambda busy: busy and opened.append((busy, browser.progress.value()))
    )
    browser.retrieve_button.click()
    wait_for(lambda: not browser.runner.busy, 60)
    assert "16 images in the local cache (16 retrieved" in browser.status.text()
    assert opened == [(True, 8)]  # the window began opening at 8 of 16, before the second series
    wait_for(lambda: window.session.volume is not None and not window.loader.busy)
    folder = browser.cache.root / study_uid
    assert window.session.volume.series_uid == first
    assert {s.path for s in window.session.volume.sources} == {
        str(p) for p in (folder / first).glob("*.dcm")
    }
    assert len(list((folder / second).glob("*.dcm"))) == 8


def test_send_to_pacs_sends_key_images_labels_and_masks(window, orthanc, sample_study):
    """In the real window: a drawn region, two slices marked K, a label overlay, a mask in the
    Masks panel; Send to PACS puts an SR, a key image selection, two captures and two SEGs
    into the study in Orthanc."""
    import numpy as np

    from birdview.core.labels import label_map_from_array
    from tests.pacs.conftest import SAMPLE_MR
    from tests.ui.test_study_isolation import open_study

    open_study(window, SAMPLE_MR)
    volume = window.session.volume
    plane = window.session.main_plane
    index = window.session.slice_index(plane)
    window.assistant.set_user_box(Box(plane, index, 40, 40, 120, 110, label="drawn"))
    window.key_images.toggle()
    window.session.set_slice(plane, index - 1)
    window.key_images.toggle()
    assert len(window.key_images.keys) == 2
    labels = np.zeros(volume.shape, dtype=np.uint8)
    labels[100:140, 5:9, 60:100] = 1
    labels[20:30, 2:4, 10:20] = 2
    window.labels.show(label_map_from_array(labels, volume, {1: "lesion", 2: "cyst"}))
    mask = np.zeros(volume.shape, dtype=bool)
    mask[60:90, 6:10, 100:140] = True
    window.masks.masks.add("tumour", "SAM box", mask)

    browser = _browser_on(window, orthanc.dicom_url)
    before = orthanc.instance_uids()
    browser.send_button.click()
    wait_for(lambda: not browser.runner.busy, 60)
    new = orthanc.instance_uids() - before
    try:
        assert browser.status.text() == (
            "Sent SR + key image selection (2) + 2 secondary captures + SEG (2 segments) + "
            "SEG of masks (1 mask): 6 instance(s)"
        )
        sent = [pydicom.dcmread(io.BytesIO(orthanc.instance_file(uid))) for uid in new]
        assert sorted(d.Modality for d in sent) == ["KO", "OT", "OT", "SEG", "SEG", "SR"]
        assert {d.StudyInstanceUID for d in sent} == {sample_study["study_uid"]}
        segments = sorted(
            [s.SegmentLabel for s in d.SegmentSequence] for d in sent if d.Modality == "SEG"
        )
        assert segments == [["lesion", "cyst"], ["tumour"]]
    finally:
        for uid in new:
            orthanc.forget(uid)


def test_send_to_pacs_refuses_a_study_that_is_not_dicom(window, orthanc, tmp_path):
    """A NIfTI study has no DICOM study to file results in: one plain line, nothing sent."""
    import nibabel as nib
    import numpy as np

    from tests.ui.test_study_isolation import open_study

    path = tmp_path / "phantom.nii.gz"
    voxels = np.arange(32 * 32 * 8, dtype=np.int16).reshape(32, 32, 8)
    nib.save(nib.Nifti1Image(voxels, np.diag([1.0, 1.0, 2.0, 1.0])), str(path))
    open_study(window, path)
    browser = _browser_on(window, orthanc.dicom_url)
    before = orthanc.instance_uids()
    browser.send_button.click()
    wait_for(lambda: not browser.runner.busy, 60)
    said = browser.status.text()
    assert said == "Unable to send results to a PACS as the open study is not DICOM"
    assert orthanc.instance_uids() == before
