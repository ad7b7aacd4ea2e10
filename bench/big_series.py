"""A real 500-slice CT series for the stall bench, made from the sample CT's DICOM files.

The sample CT has 21 slices; this writes ``count`` files cycling through them with pydicom,
each with its own SOP Instance UID, Instance Number and Image Position (1.5 mm apart along the
slice normal), all in one new series, so the viewer scans, sorts and stacks 500 real files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import generate_uid

SPACING_MM = 1.5


def sample_files(sample: Path) -> list[pydicom.Dataset]:
    datasets = []
    for path in sorted(sample.iterdir()):
        if path.name.startswith("CT."):
            datasets.append(pydicom.dcmread(path))
    return sorted(datasets, key=lambda d: float(d.ImagePositionPatient[2]))


def make_series(sample: Path, dest: Path, count: int = 500) -> Path:
    """Write ``count`` slices into ``dest`` (created); returns ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    sources = sample_files(sample)
    first = sources[0]
    origin = np.array([float(v) for v in first.ImagePositionPatient])
    orientation = np.array([float(v) for v in first.ImageOrientationPatient])
    normal = np.cross(orientation[:3], orientation[3:])
    series_uid = generate_uid()
    for n in range(count):
        ds = sources[n % len(sources)].copy()
        ds.SeriesInstanceUID = series_uid
        ds.SeriesDescription = f"bench {count} slices"
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = n + 1
        ds.ImagePositionPatient = [float(v) for v in origin + normal * SPACING_MM * n]
        ds.SliceLocation = float((origin + normal * SPACING_MM * n)[2])
        ds.SliceThickness = SPACING_MM
        ds.save_as(dest / f"CT{n:04d}.dcm", enforce_file_format=True)
    return dest
