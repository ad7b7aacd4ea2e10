"""`connect`: the client for a server's protocol, importing only that protocol's library."""

from __future__ import annotations

from birdview.pacs.client import PacsClient
from birdview.pacs.settings import PacsServer


def connect(server: PacsServer) -> PacsClient:
    """The client for ``server``'s protocol (imports only that protocol's library)."""
    if server.kind == "dimse":
        from birdview.pacs.dimse import DimseClient

        return DimseClient(server)
    from birdview.pacs.dicomweb import DicomWebClient

    return DicomWebClient(server)
