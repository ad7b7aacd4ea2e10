"""Names from inside archives and DICOMDIRs, kept inside the folder they belong to."""

from __future__ import annotations

import os
import re


def safe_parts(name_parts: list[str]) -> list[str]:
    """Path components that cannot climb out of a folder on any platform.

    Names come from files BirdView did not write (zip members, DICOMDIR file IDs). Both
    separators split, and parent steps, drive letters and empty parts are dropped, so
    "../x", "C:/Windows/x" or "//server/share/x" all stay below the target.
    """
    parts: list[str] = []
    for piece in name_parts:
        for part in re.split(r"[\\/]+", str(piece)):
            if part in ("", ".", "..") or ":" in part:
                continue
            parts.append(part)
    return parts


def is_inside(folder: str, path: str) -> bool:
    """True when ``path`` (after resolving links) lies within ``folder``."""
    folder = os.path.realpath(folder)
    return os.path.commonpath([folder, os.path.realpath(path)]) == folder
