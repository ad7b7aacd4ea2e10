"""The one error every PACS operation raises: which server, and what went wrong in plain words."""

from __future__ import annotations


class PacsError(Exception):
    """A PACS operation failed: ``server`` names it (AE@host:port or URL), ``what`` says why."""

    def __init__(self, server: str, what: str) -> None:
        super().__init__(f"{server}: {what}")
        self.server = server
        self.what = what


class RetrieveCancelled(PacsError):
    """The user cancelled a retrieval; what had arrived is kept, so it can be resumed."""
