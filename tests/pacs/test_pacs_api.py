"""Every operation over DIMSE and DICOMweb against a real Orthanc holding the sample MR."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from birdview.pacs.client import StudyQuery
from birdview.pacs.errors import RetrieveCancelled
from tests.pacs.conftest import SAMPLE_MR
from tests.pacs.helpers import PROTOCOLS, client_for, open_study, write_sr


@pytest.fixture(params=PROTOCOLS)
def client(request, orthanc):
    return client_for(orthanc, request.param)


def test_echo(client):
    client.echo()  # raises PacsError when the server does not answer


def test_find_by_patient_id_and_modality(client, sample_study):
    by_id = client.find_studies(StudyQuery(patient_id=sample_study["patient_id"]))
    assert [s["StudyInstanceUID"] for s in by_id] == [sample_study["study_uid"]]
    assert by_id[0]["NumberOfStudyRelatedInstances"] == str(len(sample_study["sop_uids"]))
    by_modality = client.find_studies(StudyQuery(modality=sample_study["modality"]))
    assert sample_study["study_uid"] in {s["StudyInstanceUID"] for s in by_modality}
    assert client.find_studies(StudyQuery(patient_id="NOT-" + sample_study["patient_id"])) == []
    assert client.find_studies(StudyQuery(modality="CT")) == []


def test_find_by_date_range_accession_and_name(client, sample_study):
    date = sample_study["study_date"]
    year = date[:4]
    for query in (
        StudyQuery(date=f"{year}0101-{year}1231"),
        StudyQuery(date=date),
        StudyQuery(accession=sample_study["accession"]),
        # a wildcard: Orthanc 1.10's DICOMweb plugin does not decode "%5E" ("^") in a query
        StudyQuery(patient_name=sample_study["patient_name"].split("^")[0] + "*"),
    ):
        found = client.find_studies(query)
        assert [s["StudyInstanceUID"] for s in found] == [sample_study["study_uid"]], query
        assert found[0]["StudyDate"] == date
    before = f"{int(year) - 1}0101-{int(year) - 1}1231"
    assert client.find_studies(StudyQuery(date=before)) == []
    assert client.find_studies(StudyQuery(accession="NO-SUCH-ACC")) == []


def test_find_series(client, sample_study):
    series = client.find_series(sample_study["study_uid"])
    assert len(series) == 1
    assert series[0]["Modality"] == sample_study["modality"]
    assert series[0]["NumberOfSeriesRelatedInstances"] == str(len(sample_study["sop_uids"]))


def test_retrieve_brings_every_instance_and_they_open(client, sample_study, tmp_path):
    seen, done_series = [], []
    result = client.retrieve(
        sample_study["study_uid"],
        str(tmp_path),
        progress=lambda done, total: seen.append((done, total)),
        on_series_done=done_series.append,
    )
    files = sorted(tmp_path.glob("*/*.dcm"))
    assert {p.stem for p in files} == sample_study["sop_uids"]
    assert {str(pydicom.dcmread(p).SOPInstanceUID) for p in files} == sample_study["sop_uids"]
    assert (result.received, result.skipped, result.total) == (16, 0, 16)
    assert seen[-1] == (16, 16) and len(seen) == 16
    assert done_series == [files[0].parent.name]
    catalog, volume = open_study(tmp_path)
    assert len(catalog.entries) == 1 and not catalog.problems
    assert len(volume.sources) == 16
    _, original = open_study(SAMPLE_MR)
    assert np.array_equal(volume.voxels, original.voxels)


def test_interrupted_retrieval_resumes_without_duplicates(client, sample_study, tmp_path):
    arrived = []
    with pytest.raises(RetrieveCancelled, match="cancelled"):
        client.retrieve(
            sample_study["study_uid"],
            str(tmp_path),
            progress=lambda done, total: arrived.append(done),
            cancel=lambda: len(arrived) >= 5,
        )
    kept = {p.stem for p in tmp_path.glob("*/*.dcm")}
    assert 5 <= len(kept) < 16
    assert not list(tmp_path.rglob("*.part"))  # only whole files are left behind
    result = client.retrieve(sample_study["study_uid"], str(tmp_path))
    assert (result.skipped, result.received) == (len(kept), 16 - len(kept))
    files = list(tmp_path.rglob("*.dcm"))
    assert len(files) == 16 and {p.stem for p in files} == sample_study["sop_uids"]


def test_store_an_sr_of_the_study(client, orthanc, sample_study, tmp_path):
    client.retrieve(sample_study["study_uid"], str(tmp_path / "study"))
    sr_uid = write_sr(tmp_path / "study", tmp_path / "birdview-sr.dcm")
    assert sr_uid not in orthanc.instance_uids()
    try:
        assert client.store([str(tmp_path / "birdview-sr.dcm")]) == [sr_uid]
        assert sr_uid in orthanc.instance_uids()
        modalities = {s["Modality"] for s in client.find_series(sample_study["study_uid"])}
        assert modalities == {sample_study["modality"], "SR"}
    finally:
        orthanc.forget(sr_uid)


def test_c_move_to_birdviews_storage_scp(orthanc, sample_study, tmp_path):
    client = client_for(orthanc, "dimse")
    result = client.move(sample_study["study_uid"], str(tmp_path))
    assert {p.stem for p in tmp_path.glob("*/*.dcm")} == sample_study["sop_uids"]
    assert (result.received, result.total) == (16, 16)
    again = client.move(sample_study["study_uid"], str(tmp_path))
    assert (again.received, again.skipped) == (0, 16)
    open_study(tmp_path)
