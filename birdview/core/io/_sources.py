"""Turning a user's path (file, folder tree, DICOMDIR, .zip) into lists of files per reader.

A .zip is extracted to a temporary folder, within bounds (member count, declared sizes, the
free disk), and removed with the catalog; folders left by a BirdView that was killed are removed
at the next extraction. Messages about its files name them inside the user's archive
("study.zip/IM1"), never in the temporary folder (see `user_path`).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import weakref
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from birdview.core.errors import VolumeReadError
from birdview.core.io._limits import check_regular_file, format_bytes, open_regular
from birdview.core.io._messages import summary
from birdview.core.io._paths import is_inside, safe_parts, walk_files
from birdview.core.io.catalog import CancelFn, ReadProblem, check_cancel

logger = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii", ".nii.gz")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

# Files that travel with studies but are not images: skipped in folders without a complaint.
_IGNORED_SUFFIXES = (
    ".txt",
    ".json",
    ".md",
    ".csv",
    ".xml",
    ".html",
    ".htm",
    ".pdf",
    ".py",
    ".sha256",
    ".md5",
    ".log",
    ".ini",
    ".yaml",
    ".yml",
    ".db",
    ".exe",
    ".inf",
    ".bat",
    ".sh",
)
_IGNORED_NAMES = ("license", "licence", "readme", "copying", "notice", "thumbs.db", "autorun")

# A zip larger than this once extracted is refused rather than filling the disk.
MAX_ZIP_EXTRACTED_BYTES = 16 * 1024**3
# More members than this is not a study (a CT has a few thousand slices at most).
MAX_ZIP_MEMBERS = 100_000
# Left free on the disk after an extraction.
_DISK_MARGIN_BYTES = 256 * 1024**2
_EXTRACTION_PREFIX = "birdview-zip-"

# Extraction folder -> the archive it came from, while the folder exists.
_ARCHIVES: dict[str, str] = {}


@dataclass
class Found:
    dicom: list[str] = field(default_factory=list)
    nifti: list[str] = field(default_factory=list)
    raster: list[str] = field(default_factory=list)
    problems: list[ReadProblem] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.dicom) + len(self.nifti) + len(self.raster) + len(self.problems)


def collect(path: str, keep_alive: list, *, cancel: CancelFn | None = None) -> Found:
    """Sort the files under ``path`` by reader; ``keep_alive`` receives temporary folders."""
    if not os.path.exists(path):
        raise VolumeReadError(path, "the path does not exist")
    found = Found()
    if os.path.isdir(path):
        _add_folder(path, found, cancel)
        return found
    check_regular_file(path)  # a named pipe would block the first read forever
    if _is_zip(path):
        folder = _extract_zip(path, keep_alive, cancel)
        _add_folder(folder, found, cancel)
    elif os.path.basename(path).upper() == "DICOMDIR":
        from birdview.core.io.dicom import read_dicomdir

        found.dicom.extend(read_dicomdir(path))
    else:
        _add_file(path, found, explicit=True)
    return found


def _add_folder(folder: str, found: Found, cancel: CancelFn | None) -> None:
    for path in walk_files(folder, found.problems, cancel=cancel):
        name = os.path.basename(path)
        # The DICOMDIR only indexes files that the walk finds anyway.
        if name.upper() == "DICOMDIR" or _is_ignored(name):
            continue
        _add_file(path, found, explicit=False)


def _add_file(path: str, found: Found, *, explicit: bool) -> None:
    lower = path.lower()
    if lower.endswith(NIFTI_SUFFIXES):
        found.nifti.append(path)
    elif lower.endswith(RASTER_SUFFIXES):
        found.raster.append(path)
    elif explicit and _is_zip(path):
        found.problems.append(ReadProblem(path, str(VolumeReadError(path, "it is a nested .zip"))))
    else:
        found.dicom.append(path)


def _is_ignored(name: str) -> bool:
    lower = name.lower()
    if lower.startswith("."):
        return True
    if lower.endswith(_IGNORED_SUFFIXES):
        return True
    return Path(lower).stem in _IGNORED_NAMES


def _is_zip(path: str) -> bool:
    # By name: a damaged archive should be reported as one, not as "not a DICOM file".
    return path.lower().endswith(".zip") or _has_zip_signature(path)


def _has_zip_signature(path: str) -> bool:
    try:
        with open_regular(path) as handle:
            return handle.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def _extract_zip(path: str, keep_alive: list, cancel: CancelFn | None) -> str:
    """Extract to a temporary folder that lives as long as ``keep_alive`` holds it.

    Raises:
        VolumeReadError: the archive is damaged, or would not fit the bounds.
        LoadCancelled: ``cancel()`` returned True (nothing is left behind).
    """
    _remove_stale_extractions()
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            _check_zip_bounds(path, members)
            tmp = tempfile.TemporaryDirectory(prefix=f"{_EXTRACTION_PREFIX}{os.getpid()}-")
            try:
                for member in members:
                    check_cancel(cancel)
                    _extract_member(archive, member, tmp.name, cancel)
            except BaseException:
                tmp.cleanup()  # a failed or cancelled extraction leaves nothing behind
                raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        # Quoted text masked: zipfile quotes member names, which may name the patient.
        reason = f"the zip archive is damaged ({summary(exc, quoted=False)})"
        raise VolumeReadError(path, reason) from exc
    except OSError as exc:  # strerror only: the full text names the temporary folder
        raise VolumeReadError(path, f"it could not be extracted ({exc.strerror or exc})") from exc
    except NotImplementedError as exc:
        raise VolumeReadError(path, f"the zip uses an unsupported compression ({exc})") from exc
    keep_alive.append(tmp)
    _ARCHIVES[tmp.name] = path
    weakref.finalize(tmp, _ARCHIVES.pop, tmp.name, None)
    logger.info("extracted %d zip members", len(members))
    return tmp.name


def _check_zip_bounds(path: str, members: list[zipfile.ZipInfo]) -> None:
    """Refuse, before writing anything, what the central directory says is too much."""
    if len(members) > MAX_ZIP_MEMBERS:
        raise VolumeReadError(
            path, f"it holds {len(members)} files, more than the {MAX_ZIP_MEMBERS} BirdView opens"
        )
    total = sum(m.file_size for m in members)
    if total > MAX_ZIP_EXTRACTED_BYTES:
        raise VolumeReadError(
            path,
            f"it would extract to {format_bytes(total)}, more than the "
            f"{format_bytes(MAX_ZIP_EXTRACTED_BYTES)} BirdView allows",
        )
    free = shutil.disk_usage(tempfile.gettempdir()).free - _DISK_MARGIN_BYTES
    if total > free:
        raise VolumeReadError(
            path,
            f"it would extract to {format_bytes(total)} but the disk of the temporary folder "
            f"has {format_bytes(max(0, free))} free",
        )


def _extract_member(
    archive: zipfile.ZipFile, member: zipfile.ZipInfo, target: str, cancel: CancelFn | None
) -> None:
    # Member names may try to climb out of the target ("../x", "C:/x"); keep them inside.
    parts = safe_parts([member.filename])
    if not parts:
        return
    destination = os.path.join(target, *parts)
    if not is_inside(target, destination):
        logger.warning("skipped a zip member that points outside the archive's folder")
        return
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    written = 0
    with archive.open(member) as src, open(destination, "wb") as dst:
        while chunk := src.read(1 << 20):
            written += len(chunk)
            if written > member.file_size:  # zipfile stops at the declared size; make sure
                raise zipfile.BadZipFile("a member is larger than its declared size")
            dst.write(chunk)
            check_cancel(cancel)


def _remove_stale_extractions() -> None:
    """Remove the extraction folders of BirdView processes that are gone (killed, crashed)."""
    if os.name != "posix":  # os.kill(pid, 0) is a liveness probe on POSIX only
        return
    root = tempfile.gettempdir()
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        match = re.fullmatch(re.escape(_EXTRACTION_PREFIX) + r"(\d+)-\w+", name)
        if match and not _process_exists(int(match.group(1))):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True


# -- the user's paths -----------------------------------------------------------------------


def user_path(path: str) -> str:
    """Where the user sees ``path``: a file extracted from a .zip as "study.zip/dir/file"."""
    for folder, archive in list(_ARCHIVES.items()):
        if path == folder or path.startswith(folder + os.sep):
            return archive + path[len(folder) :]
    return path


def user_problem(problem: ReadProblem) -> ReadProblem:
    """``problem`` with extraction-folder paths replaced by the user's (`user_path`)."""
    shown = user_path(problem.path)
    if shown == problem.path:
        return problem
    return ReadProblem(shown, problem.message.replace(repr(problem.path), repr(shown)))


def user_error(exc: VolumeReadError) -> VolumeReadError:
    """``exc`` naming the user's path (`user_path`); ``exc`` itself when that is the same."""
    shown = user_path(exc.path)
    if shown == exc.path:
        return exc
    return type(exc)(shown, exc.reason)
