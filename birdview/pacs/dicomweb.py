"""DICOMweb with dicomweb-client: QIDO-RS search, WADO-RS retrieval, STOW-RS store.

Logins are HTTP basic or a bearer token, the secret read from the system keyring; TLS checks
the server against the system trust store, or against ``ca_file`` when one is given.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import requests
from pydicom import Dataset
from pydicom.filewriter import dcmwrite
from requests.adapters import HTTPAdapter

from birdview.pacs.client import (
    INSTANCE_FIELDS,
    SERIES_FIELDS,
    STUDY_FIELDS,
    PacsClient,
    RetrieveResult,
)
from birdview.pacs.credentials import load_secret
from birdview.pacs.dimse_store import read_for_sending
from birdview.pacs.errors import PacsError, RetrieveCancelled
from birdview.pacs.files import present_instances, write_instance
from birdview.pacs.settings import PacsServer

logger = logging.getLogger(__name__)


class DicomWebClient(PacsClient):
    def __init__(self, server: PacsServer) -> None:
        super().__init__(server)
        from dicomweb_client.api import DICOMwebClient

        session = make_session(server)
        self._web = DICOMwebClient(server.url, session=session, timeout=server.timeout)
        # Its default retries five times with back-off on any error (30 s for a server that is
        # down); the user, or the browser's retry button, decides instead.
        self._web.set_http_retry_params(retry=False)

    def echo(self) -> None:
        with self._errors("QIDO-RS"):
            self._web.search_for_studies(limit=1)

    def find_studies(self, query) -> list[dict[str, str]]:
        keys = query.keys()
        with self._errors("QIDO-RS"):
            found = self._web.search_for_studies(fields=list(STUDY_FIELDS), search_filters=keys)
        rows = [_row(item, STUDY_FIELDS) for item in found]
        logger.info("QIDO-RS: %d studies", len(rows))
        return rows

    def find_series(self, study_uid: str) -> list[dict[str, str]]:
        with self._errors("QIDO-RS"):
            found = self._web.search_for_series(study_uid, fields=list(SERIES_FIELDS))
        rows = [_row(item, SERIES_FIELDS) for item in found]
        logger.info("QIDO-RS: %d series in study %s", len(rows), study_uid)
        return rows

    def find_instances(self, study_uid: str, series_uids: Sequence[str] = ()) -> list[dict]:
        with self._errors("QIDO-RS"):
            found = self._web.search_for_instances(study_uid, fields=list(INSTANCE_FIELDS))
        rows = [_row(item, INSTANCE_FIELDS) for item in found]
        return self._instances_of(rows, study_uid, series_uids)

    def retrieve(
        self, study_uid, out, *, series_uids=(), progress=None, cancel=None, on_series_done=None
    ) -> RetrieveResult:
        rows = self.find_instances(study_uid, series_uids)
        wanted = {r["SOPInstanceUID"] for r in rows}
        before = present_instances(out) & wanted
        received, series = 0, list(dict.fromkeys(r["SeriesInstanceUID"] for r in rows))
        for series_uid in series:
            uids = [r["SOPInstanceUID"] for r in rows if r["SeriesInstanceUID"] == series_uid]
            missing = [u for u in uids if u not in before]
            for ds in self._fetch(study_uid, series_uid, missing, whole=len(missing) == len(uids)):
                if cancel is not None and cancel():
                    raise RetrieveCancelled(self.server.label, "WADO-RS cancelled by the user")
                received += write_instance(out, series_uid, str(ds.SOPInstanceUID), _bytes(ds))
                if progress:
                    progress(len(before) + received, len(wanted))
            if on_series_done:
                on_series_done(series_uid)
        missing_now = len(wanted - present_instances(out))
        if missing_now:
            raise PacsError(self.server.label, f"WADO-RS ended with {missing_now} not received")
        logger.info(
            "WADO-RS: %d instances received, %d already here, %d series of study %s",
            received, len(before), len(series), study_uid,
        )  # fmt: skip
        return RetrieveResult(str(out), received, len(before), len(wanted), series)

    def store(self, paths: Sequence[str], progress=None) -> list[str]:
        datasets = [read_for_sending(self.server, p) for p in paths]
        with self._errors("STOW-RS"):
            answer = self._web.store_instances(datasets)
        failed = answer.get("FailedSOPSequence", [])
        if failed:
            reason = failed[0].get("FailureReason", "no reason given")
            raise PacsError(
                self.server.label, f"STOW-RS refused {len(failed)} instances (reason {reason})"
            )
        accepted = [str(item.ReferencedSOPInstanceUID) for item in answer.ReferencedSOPSequence]
        if progress:
            progress(len(accepted), len(datasets))
        logger.info("STOW-RS: %d instances sent: %s", len(accepted), ", ".join(accepted))
        return accepted

    def _fetch(self, study: str, series: str, missing: list[str], whole: bool) -> Iterator:
        if not missing:
            return
        with self._errors("WADO-RS"):
            if whole:
                yield from self._web.iter_series(study, series)
                return
            for sop_uid in missing:  # resuming: only what is not here yet
                yield self._web.retrieve_instance(study, series, sop_uid)

    @contextmanager
    def _errors(self, what: str):
        try:
            yield
        except requests.HTTPError as exc:
            raise PacsError(self.server.label, _http_words(what, exc.response)) from None
        except requests.exceptions.SSLError as exc:
            raise PacsError(self.server.label, f"{what}: TLS check failed ({exc})") from None
        except requests.Timeout:
            raise PacsError(
                self.server.label, f"{what}: no answer within {self.server.timeout:g} s"
            ) from None
        except requests.ConnectionError:
            raise PacsError(
                self.server.label,
                f"{what}: could not connect: nothing answered at this address "
                "(is the server running?)",
            ) from None


def make_session(server: PacsServer) -> requests.Session:
    """A session with the login and the TLS trust (system store, or ``ca_file``)."""
    session = requests.Session()
    adapter = _Adapter(server.ca_file)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if server.auth == "basic":
        session.auth = (server.username, load_secret(server))
    elif server.auth == "bearer":
        session.headers["Authorization"] = f"Bearer {load_secret(server)}"
    return session


class _Adapter(HTTPAdapter):
    """Sends QIDO wildcards as themselves, and checks HTTPS against ``ca_file`` when given.

    dicomweb-client percent-encodes ``*`` and ``?`` in query values; some servers (Orthanc
    1.10's DICOMweb plugin) then match them literally. Both may stand unencoded in a query
    (RFC 3986). The CA file is given per request because requests lets REQUESTS_CA_BUNDLE in
    the environment override ``session.verify``.
    """

    def __init__(self, ca_file: str = "") -> None:
        super().__init__()
        self.ca_file = ca_file

    def send(self, request, **kwargs):
        if "?" in request.url:
            path, query = request.url.split("?", 1)
            request.url = f"{path}?{query.replace('%2A', '*').replace('%3F', '?')}"
        if self.ca_file:
            kwargs["verify"] = self.ca_file
        return super().send(request, **kwargs)


def _http_words(what: str, response) -> str:
    code = getattr(response, "status_code", 0)
    meaning = {
        401: "the server wants a login, or refused the one given",
        403: "the login is not allowed to do this",
        404: "the server has no such resource",
    }.get(code, getattr(response, "reason", "") or "error")
    return f"{what} failed: {meaning} (HTTP {code})"


def _row(item: dict, fields: Sequence[str]) -> dict[str, str]:
    ds = Dataset.from_json(item)
    out = {}
    for name in fields:
        value = ds.get(name)
        if value is None:
            out[name] = ""
        elif isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            out[name] = "\\".join(str(v) for v in value)
        else:
            out[name] = str(value)
    return out


def _bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()
