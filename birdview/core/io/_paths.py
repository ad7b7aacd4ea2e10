"""Paths BirdView did not choose: names from inside archives and DICOMDIRs, kept inside the
folder they belong to, and folder trees of any depth, walked without recursion."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from birdview.core.errors import VolumeReadError
from birdview.core.io.catalog import CancelFn, ReadProblem, check_cancel


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


# Study folders are a few levels deep (patient/study/series/file); a tree much deeper than this
# is a loop of bind mounts, a prank or a mistake, and walking it would never end.
MAX_FOLDER_DEPTH = 32


def walk_files(
    folder: str, problems: list[ReadProblem], *, cancel: CancelFn | None = None
) -> Iterator[str]:
    """The files under ``folder``, sorted by name within each folder, folders in walk order.

    Hidden folders and links to folders are skipped (a link can make a loop). The walk keeps
    its own stack, so depth costs no recursion; folders more than `MAX_FOLDER_DEPTH` levels
    down, and folders that cannot be listed, go to ``problems`` instead.

    Raises:
        LoadCancelled: ``cancel()`` returned True.
    """
    stack = [(folder, 0)]
    while stack:
        check_cancel(cancel)
        current, depth = stack.pop()
        try:
            with os.scandir(current) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as exc:
            reason = f"the folder could not be listed ({exc.strerror or type(exc).__name__})"
            problems.append(ReadProblem(current, str(VolumeReadError(current, reason))))
            continue
        subfolders = []
        for entry in entries:
            if _is_folder(entry):
                if not entry.name.startswith(".") and not entry.is_symlink():
                    subfolders.append(entry.path)
            else:
                yield entry.path
        if subfolders and depth >= MAX_FOLDER_DEPTH:
            reason = (
                f"its subfolders lie more than {MAX_FOLDER_DEPTH} folders deep, "
                "deeper than BirdView searches"
            )
            problems.append(ReadProblem(current, str(VolumeReadError(current, reason))))
            continue
        stack.extend((path, depth + 1) for path in reversed(subfolders))


def _is_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a dangling or unreadable link: let the reader say what it is
        return False
