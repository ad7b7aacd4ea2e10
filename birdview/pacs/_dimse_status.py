"""DIMSE statuses and association failures in plain words."""

from __future__ import annotations

import logging
from contextlib import contextmanager

from pydicom import Dataset
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import evt
from pynetdicom import status as pn_status
from pynetdicom.pdu import A_ASSOCIATE_RJ

from birdview.pacs.errors import PacsError
from birdview.pacs.settings import PacsServer

# What BirdView's loader reads: uncompressed first, so a server that can transcode sends that.
TRANSFER_SYNTAXES = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
]

_TABLES = {
    "C-ECHO": pn_status.VERIFICATION_SERVICE_CLASS_STATUS,
    "C-FIND": pn_status.QR_FIND_SERVICE_CLASS_STATUS,
    "C-GET": pn_status.QR_GET_SERVICE_CLASS_STATUS,
    "C-MOVE": pn_status.QR_MOVE_SERVICE_CLASS_STATUS,
    "C-STORE": pn_status.STORAGE_SERVICE_CLASS_STATUS,
}


def check(server: PacsServer, what: str, rsp: Dataset) -> bool:
    """True for success or pending; a `PacsError` for a failure, a warning or no answer."""
    if "Status" not in rsp:
        raise PacsError(
            server.label,
            f"{what} got no answer (the connection was lost or timed out after "
            f"{server.timeout:g} s)",
        )
    code = int(rsp.Status)
    category, words = _TABLES[what].get(code, ("Failure", "unknown status"))
    if category in ("Success", "Pending"):
        return True
    comment = rsp.get("ErrorComment", "")
    raise PacsError(
        server.label,
        f"{what} failed: {words} (status 0x{code:04X})" + (f": {comment}" if comment else ""),
    )


class _Reasons(logging.Handler):
    """Collects pynetdicom's error lines (TLS and connection failures are only said there),
    and the server's A-ASSOCIATE-RJ as it arrives (`on_pdu`).

    The rejection is taken from the PDU rather than from pynetdicom's verdict: when a server
    rejects and closes the connection at once, pynetdicom 3.0 can find the socket closed
    before it reads the rejection waiting in its queue, and then reports a failed connection
    (seen under load with Orthanc refusing a wrong called AE title).
    """

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []
        self.rejection = ""
        self.handlers = [(evt.EVT_PDU_RECV, self.on_pdu)]

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith(("Result:", "Reason:", "TCP Initialisation Error:")):
            self.lines.append(message)

    def on_pdu(self, event) -> None:
        pdu = event.pdu
        if isinstance(pdu, A_ASSOCIATE_RJ):
            self.rejection = f"{pdu.result_str} by the {pdu.source_str}: {pdu.reason_str}"


@contextmanager
def rejection_reasons():
    """What the server and pynetdicom said while an association was asked for; pass its
    ``handlers`` to the association."""
    watch = _Reasons()
    pynetdicom = logging.getLogger("pynetdicom")  # its acse and transport modules report
    pynetdicom.addHandler(watch)
    try:
        yield watch
    finally:
        pynetdicom.removeHandler(watch)


def why_no_association(assoc, watch: _Reasons) -> str:
    said = [line.split(":", 1)[1].strip() for line in watch.lines]
    if watch.rejection:
        return f"the server rejected the association ({watch.rejection})"
    if assoc.is_rejected:
        return f"the server rejected the association ({' '.join(said) or 'no reason given'})"
    if said and ("SSL" in said[-1] or "certificate" in said[-1]):
        return f"could not connect: the TLS check failed ({said[-1]})"
    if assoc.is_aborted and assoc.acceptor.primitive is not None:
        return "the server aborted the association (no presentation context accepted?)"
    return "could not connect: nothing answered at this address (is the server running?)"
