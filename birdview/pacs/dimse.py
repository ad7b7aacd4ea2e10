"""DIMSE with pynetdicom: C-ECHO, C-FIND, C-GET, C-MOVE (to our own storage SCP), C-STORE."""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from pydicom import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from birdview.pacs import _dimse_status as status
from birdview.pacs.client import (
    INSTANCE_FIELDS,
    SERIES_FIELDS,
    STUDY_FIELDS,
    PacsClient,
    ProgressFn,
    RetrieveResult,
    StudyQuery,
)
from birdview.pacs.dimse_store import StorageScp, store_files
from birdview.pacs.errors import PacsError, RetrieveCancelled
from birdview.pacs.files import present_instances, write_instance
from birdview.pacs.settings import PacsServer

logger = logging.getLogger(__name__)
_FIND, _GET, _MOVE = (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)


class DimseClient(PacsClient):
    """A DICOM node reached by association; ``retrieve`` uses C-GET, ``move`` C-MOVE."""

    def echo(self) -> None:
        with self._association([Verification]) as assoc:
            rsp = assoc.send_c_echo()
            status.check(self.server, "C-ECHO", rsp)

    def find_studies(self, query: StudyQuery) -> list[dict[str, str]]:
        rows = self._find("STUDY", STUDY_FIELDS, query.keys())
        logger.info("C-FIND: %d studies", len(rows))
        return rows

    def find_series(self, study_uid: str) -> list[dict[str, str]]:
        rows = self._find("SERIES", SERIES_FIELDS, {"StudyInstanceUID": study_uid})
        logger.info("C-FIND: %d series in study %s", len(rows), study_uid)
        return rows

    def find_instances(self, study_uid: str, series_uids: Sequence[str] = ()) -> list[dict]:
        """(series, SOP instance, SOP class) UIDs of the study's instances."""
        rows = self._find("IMAGE", INSTANCE_FIELDS, {"StudyInstanceUID": study_uid})
        return self._instances_of(rows, study_uid, series_uids)

    def retrieve(
        self, study_uid, out, *, series_uids=(), progress=None, cancel=None, on_series_done=None
    ) -> RetrieveResult:
        plan = self._plan(study_uid, series_uids, out, progress, cancel)
        contexts = [_GET] + sorted(plan.sop_classes)
        roles = [build_role(uid, scp_role=True) for uid in plan.sop_classes]
        handlers = [(evt.EVT_C_STORE, plan.on_store)]
        with self._association(contexts, roles=roles, handlers=handlers) as assoc:
            for series_uid, missing in plan.missing_by_series():
                if not missing:
                    keys = []
                elif len(missing) == plan.count(series_uid):
                    keys = [{"SeriesInstanceUID": series_uid}]
                else:  # resume: ask only for what is not here yet
                    keys = [{"SeriesInstanceUID": series_uid, "SOPInstanceUID": u} for u in missing]
                for key in keys:
                    level = "IMAGE" if "SOPInstanceUID" in key else "SERIES"
                    ds = _identifier(level, (), {"StudyInstanceUID": study_uid, **key})
                    self._drive(assoc, assoc.send_c_get(ds, _GET), "C-GET", plan)
                plan.series_done(series_uid, on_series_done)
        return plan.result(self.server, "C-GET")

    def move(
        self, study_uid, out, *, series_uids=(), progress=None, cancel=None, on_series_done=None
    ) -> RetrieveResult:
        """Retrieve by C-MOVE: the server sends to `PacsServer.destination_ae`, which it must
        know at this host and ``storage_port``, where BirdView's storage SCP listens."""
        plan = self._plan(study_uid, series_uids, out, progress, cancel)
        with StorageScp(self.server, plan.on_store), self._association([_MOVE]) as assoc:
            for series_uid, missing in plan.missing_by_series():
                if missing:  # files already here are skipped as they arrive
                    key = {"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid}
                    ds = _identifier("SERIES", (), key)
                    responses = assoc.send_c_move(ds, self.server.destination_ae, _MOVE)
                    self._drive_move(assoc, responses, plan)
                plan.series_done(series_uid, on_series_done)
        return plan.result(self.server, "C-MOVE")

    def store(self, paths: Sequence[str], progress: ProgressFn | None = None) -> list[str]:
        return store_files(self, paths, progress)

    def _plan(self, study_uid, series_uids, out, progress, cancel) -> _Plan:
        rows = self.find_instances(study_uid, series_uids)
        if len({r["SOPClassUID"] for r in rows}) > 120:
            raise PacsError(
                self.server.label,
                f"study {study_uid} has more kinds of instance than one association can carry; "
                "retrieve it series by series",
            )
        return _Plan(study_uid, rows, out, progress, cancel)

    def _find(self, level: str, fields: Sequence[str], keys: dict[str, str]) -> list[dict]:
        ds = _identifier(level, fields, keys)
        rows = []
        with self._association([_FIND]) as assoc:
            for rsp, identifier in assoc.send_c_find(ds, _FIND):
                if status.check(self.server, "C-FIND", rsp) and identifier is not None:
                    rows.append({f: _text(identifier.get(f)) for f in fields})
        return rows

    def _drive_move(self, assoc: Association, responses: Iterator, plan: _Plan) -> None:
        try:
            self._drive(assoc, responses, "C-MOVE", plan)
        except RetrieveCancelled:
            raise
        except PacsError as exc:
            # Servers rarely say why a move failed; the usual cause is an unknown destination.
            dest, port = self.server.destination_ae, self.server.storage_port
            raise PacsError(
                self.server.label,
                f"{exc.what}; the server refused to send to {dest}: it must know the AE title "
                f"{dest} at this computer's address, port {port}",
            ) from None

    def _drive(self, assoc: Association, responses: Iterator, what: str, plan: _Plan) -> None:
        for rsp, _ in responses:
            if plan.cancelled():
                assoc.abort()
                raise RetrieveCancelled(self.server.label, f"{what} cancelled by the user")
            status.check(self.server, what, rsp)

    @contextmanager
    def _association(self, contexts, roles=(), handlers=()) -> Iterator[Association]:
        ae = make_ae(self.server)
        for context in contexts:
            # a plain UID offers every syntax the loader reads; (UID, syntaxes) offers those
            uid, syntaxes = context if isinstance(context, tuple) else (context, None)
            ae.add_requested_context(uid, syntaxes or status.TRANSFER_SYNTAXES)
        with status.rejection_reasons() as watch:
            assoc = ae.associate(
                self.server.host,
                self.server.port,
                ae_title=self.server.called_ae,
                ext_neg=list(roles),
                evt_handlers=[*handlers, *watch.handlers],
                tls_args=tls_args(self.server),
            )
        if not assoc.is_established:
            raise PacsError(self.server.label, status.why_no_association(assoc, watch))
        for event, handler in watch.handlers:  # only the negotiation is watched
            assoc.unbind(event, handler)
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()


def make_ae(server: PacsServer) -> AE:
    ae = AE(ae_title=server.calling_ae)
    for name in ("acse_timeout", "dimse_timeout", "network_timeout", "connection_timeout"):
        setattr(ae, name, server.timeout)
    ae.maximum_pdu_size = 0  # unlimited: faster transfers
    return ae


def tls_args(server: PacsServer) -> tuple[ssl.SSLContext, str] | None:
    """TLS with the system trust store, or with ``ca_file`` when given."""
    if not server.tls:
        return None
    context = ssl.create_default_context(cafile=server.ca_file or None)
    return context, server.host


def _identifier(level: str, fields: Sequence[str], keys: dict[str, str]) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for name in fields:
        setattr(ds, name, "")
    for name, value in keys.items():
        setattr(ds, name, value)
    return ds


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


class _Plan:
    """The instances to fetch, what is already in ``out``, and the counts as they arrive."""

    def __init__(self, study_uid: str, rows: list[dict], out: str, progress, cancel) -> None:
        self.study_uid, self.rows, self.out = study_uid, rows, out
        self.progress, self.cancel = progress, cancel
        self.series_of = {r["SOPInstanceUID"]: r["SeriesInstanceUID"] for r in rows}
        self.sop_classes = {r["SOPClassUID"] for r in rows if r["SOPClassUID"]}
        self.present = present_instances(out) & set(self.series_of)
        self.received = 0
        self.series: list[str] = []
        self._lock = threading.Lock()
        self._stop = False

    def count(self, series_uid: str) -> int:
        return sum(1 for s in self.series_of.values() if s == series_uid)

    def missing_by_series(self) -> Iterator[tuple[str, list[str]]]:
        order = list(dict.fromkeys(r["SeriesInstanceUID"] for r in self.rows))
        for series_uid in order:
            missing = [u for u, s in self.series_of.items() if s == series_uid]
            missing = [u for u in missing if u not in self.present]
            yield series_uid, missing

    def on_store(self, event) -> int:
        """EVT_C_STORE: keep the file (named by its UID) unless it is already here."""
        if self.cancelled():
            return 0xA700  # refuse further sub-operations once cancelled
        sop_uid = str(event.request.AffectedSOPInstanceUID)
        series_uid = self.series_of.get(sop_uid) or str(event.dataset.SeriesInstanceUID)
        try:
            wrote = write_instance(self.out, series_uid, sop_uid, event.encoded_dataset())
        except (OSError, ValueError) as exc:
            logger.warning("could not keep instance %s: %s", sop_uid, type(exc).__name__)
            return 0xA700
        with self._lock:
            self.received += int(wrote)
            done = len(self.present) + self.received
        if self.progress:
            self.progress(done, len(self.series_of))
        return 0x0000

    def cancelled(self) -> bool:
        if not self._stop and self.cancel is not None and self.cancel():
            self._stop = True
        return self._stop

    def series_done(self, series_uid: str, callback: Callable[[str], None] | None) -> None:
        self.series.append(series_uid)
        if callback:
            callback(series_uid)

    def result(self, server: PacsServer, what: str) -> RetrieveResult:
        have = present_instances(self.out) & set(self.series_of)
        missing = len(self.series_of) - len(have)
        if missing:
            raise PacsError(server.label, f"{what} ended with {missing} instances not received")
        logger.info(
            "%s: %d instances received, %d already here, %d series of study %s",
            what, self.received, len(self.present), len(self.series), self.study_uid,
        )  # fmt: skip
        return RetrieveResult(
            str(self.out), self.received, len(self.present), len(self.series_of), self.series
        )
