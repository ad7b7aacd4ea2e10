"""Finding and reading studies: DICOM (files, folders, DICOMDIR, .zip), NIfTI and raster images.

Two steps, so a viewer can list what a path holds before decoding anything::

    catalog = scan(path)            # headers only: series, and the files that failed
    volume = load(catalog.entries[0])

`open_path` does both for every series. Every failure to read a file is a `VolumeReadError`
whose message names the file and the cause; a scan collects them in ``catalog.problems`` and
goes on with the rest.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from birdview.core.errors import VolumeReadError
from birdview.core.io import _sources
from birdview.core.io.catalog import (
    CancelFn,
    Catalog,
    ProgressFn,
    ReadProblem,
    SeriesEntry,
    check_cancel,
)
from birdview.core.volume import SliceSource, Volume

__all__ = [
    "Catalog",
    "ReadProblem",
    "SeriesEntry",
    "load",
    "open_path",
    "read_preview",
    "scan",
    "tag_rows",
]

logger = logging.getLogger(__name__)


def scan(path: str | os.PathLike, *, cancel: CancelFn | None = None) -> Catalog:
    """List the series under ``path`` (a file, a folder tree, a DICOMDIR or a .zip).

    Raises:
        VolumeReadError: the path does not exist or is an unreadable archive. Unreadable files
            inside a folder do not raise: they are listed in ``catalog.problems``.
        LoadCancelled: ``cancel()`` returned True.
    """
    from birdview.core.io import dicom, nifti, raster

    path = os.fspath(path)
    catalog = Catalog(root=path)
    found = _sources.collect(path, catalog.keep_alive, cancel=cancel)
    catalog.problems.extend(found.problems)
    for file_path in found.nifti:
        _scan_one(catalog, nifti.scan_nifti, file_path, cancel)
    for file_path in found.raster:
        _scan_one(catalog, raster.scan_raster, file_path, cancel)
    if found.dicom:
        entries, problems = dicom.scan_dicom(found.dicom, cancel=cancel)
        catalog.entries.extend(entries)
        catalog.problems.extend(problems)
    # Files from a .zip are named inside the archive, not in the temporary folder.
    catalog.problems[:] = [_sources.user_problem(problem) for problem in catalog.problems]
    logger.info(
        "scanned %d files: %d series, %d problems",
        found.count,
        len(catalog.entries),
        len(catalog.problems),
    )
    return catalog


def _scan_one(catalog: Catalog, scanner, file_path: str, cancel: CancelFn | None) -> None:
    check_cancel(cancel)
    try:
        catalog.entries.append(scanner(file_path))
    except VolumeReadError as exc:
        catalog.problems.append(ReadProblem(exc.path, str(exc)))


def load(
    entry: SeriesEntry,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> Volume:
    """Read the voxels of one scanned series.

    Raises:
        VolumeReadError: the pixels cannot be decoded or the series is inconsistent.
        LoadCancelled: ``cancel()`` returned True.
    """
    from birdview.core.io import dicom, nifti, raster

    loaders = {"dicom": dicom.load_dicom, "nifti": nifti.load_nifti, "raster": raster.load_raster}
    if entry.kind not in loaders:
        raise ValueError(f"Unable to load series as its kind {entry.kind!r} is unknown")
    try:
        return loaders[entry.kind](entry, progress=progress, cancel=cancel)
    except VolumeReadError as exc:
        shown = _sources.user_error(exc)  # a file from a .zip: name it inside the archive
        if shown is exc:
            raise
        raise shown from exc


def read_preview(entry: SeriesEntry) -> np.ndarray | None:
    """The middle slice of a DICOM series, decoded alone so it can be shown at once.

    Returns None where a preview would not be faster than the full load (NIfTI, raster), or
    when that slice cannot be read (the full load will then report why).
    """
    if entry.kind != "dicom":
        return None
    from birdview.core.io import dicom

    try:
        return dicom.read_dicom_slice(entry, entry.n_slices // 2)
    except VolumeReadError:
        return None


def tag_rows(source: SliceSource) -> list:
    """The header elements of one slice's file (`dicom.TagRow`s); [] for non-DICOM files."""
    from birdview.core.io import dicom

    if not dicom.looks_like_dicom(source.path):
        return []
    try:
        return dicom.dicom_tag_rows(source)
    except VolumeReadError as exc:
        logger.info("no tags for a slice: %s", exc.reason)
        return []


def open_path(
    path: str | os.PathLike, *, cancel: CancelFn | None = None
) -> tuple[list[Volume], list[ReadProblem]]:
    """Scan ``path`` and load every series found; failures go to the returned problems."""
    catalog = scan(path, cancel=cancel)
    volumes: list[Volume] = []
    problems = list(catalog.problems)
    for entry in catalog.entries:
        try:
            volumes.append(load(entry, cancel=cancel))
        except VolumeReadError as exc:
            problems.append(ReadProblem(exc.path, str(exc)))
    return volumes, problems
