"""The interface both protocols implement, the rows they return, and `connect`."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from birdview.pacs.errors import PacsError
from birdview.pacs.settings import PacsServer

ProgressFn = Callable[[int, int], None]  # (instances done, instances in all)
CancelFn = Callable[[], bool]

# Third-party loggers that quote query keys, datasets or URLs with patient names and IDs at
# INFO/DEBUG; BirdView's own records carry UIDs and counts only.
for _name in ("pynetdicom", "dicomweb_client", "urllib3"):
    logging.getLogger(_name).setLevel(logging.WARNING)
# pynetdicom reports a refusal over several ERROR lines; BirdView raises it as one PacsError.
logging.getLogger("pynetdicom").propagate = False

STUDY_FIELDS = (
    "StudyInstanceUID",
    "PatientName",
    "PatientID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyDescription",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
SERIES_FIELDS = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "SeriesNumber",
    "SeriesDescription",
    "NumberOfSeriesRelatedInstances",
)
INSTANCE_FIELDS = ("SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")


@dataclass
class StudyQuery:
    """Study search keys; empty means any. ``date`` is a DICOM date or range (20170101-)."""

    patient_name: str = ""
    patient_id: str = ""
    date: str = ""
    modality: str = ""
    accession: str = ""
    description: str = ""
    study_uid: str = ""

    def keys(self) -> dict[str, str]:
        """The DICOM keywords to match on, only those given."""
        pairs = {
            "PatientName": self.patient_name,
            "PatientID": self.patient_id,
            "StudyDate": self.date,
            "ModalitiesInStudy": self.modality,
            "AccessionNumber": self.accession,
            "StudyDescription": self.description,
            "StudyInstanceUID": self.study_uid,
        }
        return {k: v for k, v in pairs.items() if v}


@dataclass
class RetrieveResult:
    """What a retrieval did: instances written now, already there before, and in all."""

    folder: str
    received: int = 0
    skipped: int = 0
    total: int = 0
    series: list[str] = field(default_factory=list)


class PacsClient(ABC):
    """One server, one protocol. Every failure is a `PacsError` naming the server."""

    def __init__(self, server: PacsServer) -> None:
        self.server = server

    def _instances_of(
        self, rows: list[dict], study_uid: str, series_uids: Sequence[str]
    ) -> list[dict]:
        """``rows`` (the study's instances, keyed by `INSTANCE_FIELDS`) of ``series_uids``
        only, or all when it is empty.

        Raises:
            PacsError: no instance is left.
        """
        if series_uids:
            rows = [r for r in rows if r["SeriesInstanceUID"] in series_uids]
        if not rows:
            raise PacsError(self.server.label, f"the server has no instances of study {study_uid}")
        return rows

    @abstractmethod
    def echo(self) -> None:
        """Check the server answers (C-ECHO, or a QIDO-RS request for DICOMweb)."""

    @abstractmethod
    def find_studies(self, query: StudyQuery) -> list[dict[str, str]]:
        """Matching studies as dicts keyed by `STUDY_FIELDS` keywords."""

    @abstractmethod
    def find_series(self, study_uid: str) -> list[dict[str, str]]:
        """The study's series as dicts keyed by `SERIES_FIELDS` keywords."""

    @abstractmethod
    def retrieve(
        self,
        study_uid: str,
        out: str,
        *,
        series_uids: Sequence[str] = (),
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
        on_series_done: Callable[[str], None] | None = None,
    ) -> RetrieveResult:
        """Fetch the study (or the given series) into ``out``, skipping instances already there.

        ``on_series_done(series_uid)`` is called as each series is complete, so a viewer can
        open the first while the rest arrive. Cancelling raises `RetrieveCancelled`.
        """

    @abstractmethod
    def store(self, paths: Sequence[str], progress: ProgressFn | None = None) -> list[str]:
        """Send DICOM files; returns the SOP Instance UIDs the server accepted."""
