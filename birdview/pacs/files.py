"""Where retrieved instances go: ``<out>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``.

Files are named by UID and written under a temporary name then renamed, so an interrupted
retrieval leaves only whole files, and a resumed one skips what is already there.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def safe_uid(uid: str) -> str:
    """``uid`` when it is a DICOM UID (digits and dots); a server cannot steer paths."""
    uid = str(uid).strip().rstrip("\0")
    if not _UID.match(uid) or len(uid) > 64:
        raise ValueError(f"not a DICOM UID: {uid[:70]!r}")
    return uid


def instance_path(out: str | os.PathLike, series_uid: str, sop_uid: str) -> Path:
    return Path(out) / safe_uid(series_uid) / f"{safe_uid(sop_uid)}.dcm"


def present_instances(out: str | os.PathLike) -> set[str]:
    """SOP Instance UIDs already retrieved into ``out``."""
    out = Path(out)
    if not out.is_dir():
        return set()
    return {p.stem for p in out.glob("*/*.dcm")}


def write_instance(out: str | os.PathLike, series_uid: str, sop_uid: str, data: bytes) -> bool:
    """Write one instance's file bytes; False (nothing written) when it is already there."""
    path = instance_path(out, series_uid, sop_uid)
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True
