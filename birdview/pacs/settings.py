"""A PACS server's settings, from a URL or a saved list; credentials never live here.

URLs: ``dicom://CALLED_AE@host:port`` (DIMSE) and ``http(s)://host:port/<dicomweb root>``.
Passwords and tokens are kept in the system keyring (see `credentials`); the saved list holds
only the user name and the kind of login.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_AE = "BIRDVIEW"
AUTH_KINDS = ("none", "basic", "bearer")
RETRIEVE_KINDS = ("get", "move")  # how a DICOM server's studies come: C-GET or C-MOVE
_AE_CHARS = re.compile(r"^[ -~]{1,16}$")


@dataclass(frozen=True)
class PacsServer:
    """Everything needed to reach one PACS.

    ``storage_port`` is where BirdView's own storage SCP listens when a C-MOVE asks the PACS to
    send the images to ``move_ae`` (the PACS must know that AE title at this host and port).
    """

    kind: str  # "dimse" or "dicomweb"
    host: str
    port: int
    called_ae: str = ""
    calling_ae: str = DEFAULT_AE
    root: str = ""  # DICOMweb path, e.g. "/dicom-web"
    scheme: str = "http"
    name: str = ""
    timeout: float = 30.0
    tls: bool = False
    ca_file: str = ""
    auth: str = "none"  # "none", "basic" or "bearer"
    username: str = ""
    storage_port: int = 11113
    move_ae: str = ""
    retrieve_by: str = "get"  # "get" or "move" (DIMSE only; DICOMweb always uses WADO-RS)

    @property
    def url(self) -> str:
        if self.kind == "dimse":
            return f"dicom://{self.called_ae}@{self.host}:{self.port}"
        return f"{self.scheme}://{self.host}:{self.port}{self.root}"

    @property
    def label(self) -> str:
        """How messages name the server: its saved name, else its URL."""
        return self.name or self.url

    @property
    def destination_ae(self) -> str:
        """The AE title a C-MOVE sends to: ``move_ae`` when set, else our calling AE."""
        return self.move_ae or self.calling_ae


def parse_url(url: str, *, calling_ae: str = DEFAULT_AE, **extra) -> PacsServer:
    """A server from ``dicom://AE@host:port`` or ``http(s)://host:port/root``.

    Raises:
        ValueError: the URL is not one of these forms (the message says which part is wrong).
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("dicom", "http", "https"):
        raise ValueError(f"{url}: the URL must start with dicom://, http:// or https://")
    if not parts.hostname:
        raise ValueError(f"{url}: the URL names no host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url}: the port is not a number from 1 to 65535") from None
    check_ae(calling_ae, url)
    if extra.get("move_ae"):
        check_ae(extra["move_ae"], url)
    if extra.get("retrieve_by", "get") not in RETRIEVE_KINDS:
        raise ValueError(f"{url}: retrieve by {extra['retrieve_by']!r}: use get or move")
    if scheme == "dicom":
        called = parts.username or ""
        if not called:
            raise ValueError(
                f"{url}: a dicom:// URL needs the called AE title: dicom://AE@host:port"
            )
        check_ae(called, url)
        if port is None:
            raise ValueError(f"{url}: a dicom:// URL needs a port: dicom://AE@host:port")
        return PacsServer("dimse", parts.hostname, port, called, calling_ae, **extra)
    default = 443 if scheme == "https" else 80
    extra["tls"] = scheme == "https"  # over HTTP the scheme says it, whatever else was asked
    return PacsServer(
        "dicomweb",
        parts.hostname,
        port or default,
        calling_ae=calling_ae,
        root=parts.path.rstrip("/"),
        scheme=scheme,
        **extra,
    )


def check_ae(title: str, where: str) -> None:
    if not _AE_CHARS.match(title) or title.strip() != title or "\\" in title:
        raise ValueError(
            f"{where}: the AE title {title!r} must be 1 to 16 printable characters, "
            "no backslash, no leading or trailing space"
        )


def load_servers(path: str | os.PathLike) -> list[PacsServer]:
    """The saved servers; a missing file is an empty list.

    Raises:
        ValueError: the file is not a list of server settings (the message names the file).
    """
    path = Path(path)
    if not path.exists():
        return []
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(PacsServer)}
        return [PacsServer(**{k: v for k, v in row.items() if k in known}) for row in rows]
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: not a list of PACS servers ({exc})") from None


def save_servers(path: str | os.PathLike, servers: list[PacsServer]) -> None:
    """Write the list atomically: a crash leaves the old list, never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([asdict(s) for s in servers], indent=2), encoding="utf-8")
    os.replace(tmp, path)


def with_name(server: PacsServer, name: str) -> PacsServer:
    return replace(server, name=name)
