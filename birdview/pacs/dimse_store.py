"""C-STORE: sending files to a server, and BirdView's own storage SCP for C-MOVE."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydicom import dcmread
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, AllStoragePresentationContexts, evt

from birdview.pacs import _dimse_status as status
from birdview.pacs.errors import PacsError
from birdview.pacs.settings import PacsServer

logger = logging.getLogger(__name__)


def store_files(client, paths: Sequence[str], progress=None) -> list[str]:
    """Send ``paths`` over one association; returns the accepted SOP Instance UIDs."""
    datasets = [read_for_sending(client.server, p) for p in paths]
    syntaxes: dict[str, set[str]] = {}
    for ds in datasets:
        syntaxes.setdefault(ds.SOPClassUID, set()).add(ds.file_meta.TransferSyntaxUID)
    if len(syntaxes) > 120:
        raise PacsError(client.server.label, "too many kinds of file for one association")
    # The file's own syntax, plus the two every server accepts so pydicom can re-encode.
    contexts = [
        (uid, sorted(found | {ExplicitVRLittleEndian, ImplicitVRLittleEndian}))
        for uid, found in syntaxes.items()
    ]
    accepted = []
    with client._association(contexts) as assoc:
        for n, ds in enumerate(datasets, start=1):
            rsp = assoc.send_c_store(ds)
            status.check(client.server, "C-STORE", rsp)
            accepted.append(str(ds.SOPInstanceUID))
            if progress:
                progress(n, len(datasets))
    logger.info("C-STORE: %d instances sent: %s", len(accepted), ", ".join(accepted))
    return accepted


def read_for_sending(server: PacsServer, path: str):
    """The file as a dataset; a `PacsError` naming the file when it is not DICOM."""
    try:
        ds = dcmread(path)
        ds.SOPInstanceUID  # noqa: B018 - a file without one cannot be stored
        ds.SOPClassUID  # noqa: B018
        return ds
    except (OSError, InvalidDicomError, AttributeError) as exc:
        raise PacsError(
            server.label, f"cannot send {path}: not a readable DICOM instance ({exc})"
        ) from None


class StorageScp:
    """BirdView's storage SCP on ``server.storage_port`` while a C-MOVE runs."""

    def __init__(self, server: PacsServer, on_store) -> None:
        self.server, self.on_store, self._scp = server, on_store, None

    def __enter__(self) -> StorageScp:
        ae = AE(ae_title=self.server.destination_ae)
        ae.network_timeout = ae.dimse_timeout = ae.acse_timeout = self.server.timeout
        ae.maximum_pdu_size = 0
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, status.TRANSFER_SYNTAXES)
        try:
            self._scp = ae.start_server(
                ("", self.server.storage_port),
                block=False,
                evt_handlers=[(evt.EVT_C_STORE, self.on_store)],
            )
        except OSError as exc:
            raise PacsError(
                self.server.label,
                f"BirdView's storage port {self.server.storage_port} cannot be opened "
                f"for C-MOVE ({exc.strerror or exc})",
            ) from None
        return self

    def __exit__(self, *exc_info) -> None:
        if self._scp is not None:
            self._scp.shutdown()
