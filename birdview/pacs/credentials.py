"""Passwords and bearer tokens for DICOMweb servers, kept in the system keyring only."""

from __future__ import annotations

from birdview.pacs.errors import PacsError
from birdview.pacs.settings import PacsServer

SERVICE = "BirdView PACS"
_TOKEN_USER = "bearer-token"


def _entry(server: PacsServer) -> tuple[str, str]:
    user = _TOKEN_USER if server.auth == "bearer" else server.username
    return f"{SERVICE} {server.scheme}://{server.host}:{server.port}", user


def save_secret(server: PacsServer, secret: str) -> None:
    """Keep ``secret`` (password or token) for ``server`` in the keyring."""
    import keyring
    from keyring.errors import KeyringError

    service, user = _entry(server)
    try:
        keyring.set_password(service, user, secret)
    except KeyringError as exc:
        raise PacsError(
            server.label, f"the system keyring refused to store the secret ({exc})"
        ) from None


def load_secret(server: PacsServer) -> str:
    """The secret for ``server``; a `PacsError` when the keyring has none."""
    import keyring
    from keyring.errors import KeyringError

    service, user = _entry(server)
    try:
        secret = keyring.get_password(service, user)
    except KeyringError as exc:
        raise PacsError(server.label, f"the system keyring could not be read ({exc})") from None
    if not secret:
        who = "bearer token" if server.auth == "bearer" else f"password for {user!r}"
        raise PacsError(
            server.label, f"the system keyring holds no {who}; run 'birdview pacs login' first"
        )
    return secret


def forget_secret(server: PacsServer) -> None:
    """Remove ``server``'s secret from the keyring; nothing happens when there is none."""
    import keyring
    from keyring.errors import KeyringError, PasswordDeleteError

    service, user = _entry(server)
    try:
        keyring.delete_password(service, user)
    except PasswordDeleteError:
        pass  # there was none
    except KeyringError as exc:
        raise PacsError(server.label, f"the system keyring could not be changed ({exc})") from None
