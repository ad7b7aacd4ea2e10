"""Shared pieces of the PACS tests: clients on the test Orthanc, and an SR for the sample."""

from __future__ import annotations

from pathlib import Path

from birdview.core import geometry
from birdview.core.box import Box
from birdview.core.exports_sr import export_dicom_sr
from birdview.core.io import load, scan
from birdview.core.session_store import SessionRecord
from birdview.pacs.client import PacsClient
from birdview.pacs.connection import connect
from birdview.pacs.credentials import save_secret
from birdview.pacs.settings import parse_url
from tests.pacs import orthanc as orthanc_server

PROTOCOLS = ("dimse", "dicomweb")


def server_for(orthanc, protocol: str, **extra):
    if protocol == "dimse":
        return parse_url(orthanc.dicom_url, storage_port=orthanc.storage_port, **extra)
    extra.setdefault("auth", "basic")
    extra.setdefault("username", orthanc_server.USER)
    return parse_url(orthanc.web_url, **extra)


def client_for(orthanc, protocol: str, **extra) -> PacsClient:
    """A client on the test Orthanc; the DICOMweb login's password goes into the keyring."""
    server = server_for(orthanc, protocol, **extra)
    if server.auth == "basic":
        save_secret(server, orthanc_server.PASSWORD)
    return connect(server)


def open_study(folder: Path):
    """The study as BirdView's loader reads it: the catalog and its first volume."""
    catalog = scan(str(folder))
    return catalog, geometry.to_canonical(load(catalog.entries[0]))


def write_sr(folder: Path, out: Path) -> str:
    """An SR about the study in ``folder`` (a region drawn on the middle slice), written by
    BirdView's exporter; returns its SOP Instance UID."""
    _, volume = open_study(folder)
    plane = geometry.acquisition_plane(volume)
    middle = geometry.slice_count(volume, plane) // 2
    record = SessionRecord(
        volume.identity,
        (str(folder),),
        user_boxes=(Box(plane, middle, 40, 40, 120, 110, label="drawn"),),
    )
    return export_dicom_sr(record, volume, out).sop_instance_uid
