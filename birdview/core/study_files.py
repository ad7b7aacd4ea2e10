"""The files a study keeps beside its session (measurements, key images, labels, masks).

Each is named after the study's identity like ``session-<16 hex>.json`` (``<kind>-<16 hex>``),
carries that identity, and is refused when it names another study. A file that cannot be read
is set aside under an unused ``.unreadable`` name so that nothing is lost and the study opens.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from birdview.core.files import write_atomic
from birdview.core.session_store import session_path

__all__ = ["load_study_file", "save_study_json", "set_aside", "study_file_path"]

T = TypeVar("T")


def study_file_path(
    identity: str, base_dir: str | os.PathLike, kind: str, suffix: str = ".json"
) -> Path:
    """``base_dir/<kind>-<16 hex><suffix>``, beside the study's ``session-<16 hex>.json``."""
    session = session_path(identity, base_dir)  # checks the identity
    return session.with_name(session.name.replace("session-", f"{kind}-", 1)).with_suffix(suffix)


def load_study_file(
    path: Path, identity: str, what: str, read: Callable[[Path], tuple[str, T]]
) -> T | None:
    """What ``read`` finds in study ``identity``'s file ``path`` (None: there is no file).

    Raises:
        ValueError: the file is damaged, or it belongs to another study.
        OSError: the file could not be read.
    """
    try:
        saved, contents = read(path)
    except FileNotFoundError:
        return None
    if saved != identity:
        raise ValueError(
            f"Unable to restore the {what} {path.name!r} as they belong to another study"
        )
    return contents


def save_study_json(
    path: Path,
    identity: str,
    what: str,
    data: dict | None,
    read_identity: Callable[[Path], str],
) -> Path:
    """Write ``data`` (None: the file goes) to study ``identity``'s file ``path`` atomically;
    ``what`` names the contents in the message ("measurements").

    Raises:
        ValueError: the file there belongs to another study (it is left as it is).
        OSError: the file could not be written.
    """
    try:
        saved = read_identity(path)
    except (OSError, ValueError):
        saved = None  # no file, or a damaged one: it is replaced
    if saved is not None and saved != identity:
        raise ValueError(f"Unable to save the {what} as {path.name!r} belongs to another study")
    if data is None:
        path.unlink(missing_ok=True)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data, indent=1))
    return path


def set_aside(path: Path) -> Path:
    """Rename ``path`` to ``<name>.unreadable`` (or ``.unreadable-2``, ``-3``... so an earlier
    one is never replaced); returns the new path.

    Raises:
        OSError: the file could not be renamed.
    """
    base = path.with_name(path.name + ".unreadable")
    kept, n = base, 1
    while kept.exists():
        n += 1
        kept = base.with_name(f"{base.name}-{n}")
    os.replace(path, kept)
    return kept
