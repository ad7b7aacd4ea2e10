"""Second series made from a real one: some of its slices, re-filed as a series of their own.

A thinner-spaced or shorter copy of a real series is the honest stand-in for "another
reconstruction of the same scan": every kept file is the original bytes of its pixels and
geometry; only the Series Instance UID, Series Number and Series Description change.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

from birdview.core import geometry, io


def sorted_slices(folder: str | os.PathLike) -> list[Path]:
    """The DICOM files of ``folder`` in order along their slice normal."""
    files = []
    for path in sorted(Path(folder).iterdir()):
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - licences and notes beside the images
            continue
        if "ImagePositionPatient" in header:
            files.append((header, path))
    orientation = [float(v) for v in files[0][0].ImageOrientationPatient]
    row, col = orientation[:3], orientation[3:]
    normal = (
        row[1] * col[2] - row[2] * col[1],
        row[2] * col[0] - row[0] * col[2],
        row[0] * col[1] - row[1] * col[0],
    )
    files.sort(
        key=lambda hp: sum(
            float(p) * n for p, n in zip(hp[0].ImagePositionPatient, normal, strict=True)
        )
    )
    return [path for _, path in files]


def write_subseries(
    folder: str | os.PathLike, out: Path, keep: Sequence[int], description: str
) -> Path:
    """Copy the slices at positions ``keep`` (in slice order) of ``folder`` into ``out`` as a
    new series; returns ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    uid = generate_uid()
    for n, path in enumerate(sorted_slices(folder)):
        if n not in keep:
            continue
        dataset = pydicom.dcmread(path)
        dataset.SeriesInstanceUID = uid
        dataset.SeriesNumber = int(dataset.get("SeriesNumber", 0) or 0) + 100
        dataset.SeriesDescription = description
        dataset.SOPInstanceUID = generate_uid()
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        dataset.save_as(out / f"{description.replace(' ', '_')}_{n:03d}.dcm")
    return out


def load_canonical(folder: str | os.PathLike):
    """The first series of ``folder``, in canonical order."""
    catalog = io.scan(str(folder))
    return geometry.to_canonical(io.load(catalog.entries[0]))
