"""Turning a user's path (file, folder tree, DICOMDIR, .zip) into lists of files per reader."""

from __future__ import annotations

import logging
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from birdview.core.errors import VolumeReadError
from birdview.core.io._paths import is_inside, safe_parts
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
    elif _is_zip(path):
        folder = _extract_zip(path, keep_alive)
        _add_folder(folder, found, cancel)
    elif os.path.basename(path).upper() == "DICOMDIR":
        from birdview.core.io.dicom import read_dicomdir

        found.dicom.extend(read_dicomdir(path))
    else:
        _add_file(path, found, explicit=True)
    return found


def _add_folder(folder: str, found: Found, cancel: CancelFn | None) -> None:
    for root, dirs, files in os.walk(folder):
        check_cancel(cancel)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            # The DICOMDIR only indexes files that the walk finds anyway.
            if name.upper() == "DICOMDIR" or _is_ignored(name):
                continue
            _add_file(os.path.join(root, name), found, explicit=False)


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
        with open(path, "rb") as handle:
            return handle.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def _extract_zip(path: str, keep_alive: list) -> str:
    """Extract to a temporary folder that lives as long as ``keep_alive`` holds it."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            total = sum(m.file_size for m in members)
            if total > MAX_ZIP_EXTRACTED_BYTES:
                raise VolumeReadError(
                    path,
                    f"it would extract to {total / 1024**3:.1f} GiB, more than BirdView allows",
                )
            tmp = tempfile.TemporaryDirectory(prefix="birdview-zip-")
            keep_alive.append(tmp)
            for member in members:
                _extract_member(archive, member, tmp.name)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise VolumeReadError(path, f"the zip archive is damaged ({exc})") from exc
    except NotImplementedError as exc:
        raise VolumeReadError(path, f"the zip uses an unsupported compression ({exc})") from exc
    logger.info("extracted %d zip members", len(members))
    return tmp.name


def _extract_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, target: str) -> None:
    # Member names may try to climb out of the target ("../x", "C:/x"); keep them inside.
    parts = safe_parts([member.filename])
    if not parts:
        return
    destination = os.path.join(target, *parts)
    if not is_inside(target, destination):
        logger.warning("skipped a zip member that points outside the archive's folder")
        return
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    with archive.open(member) as src, open(destination, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
