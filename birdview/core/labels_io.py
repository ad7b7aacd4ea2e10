"""`open_labels`: read a segmentation file for the open study, whatever its format.

NIfTI label maps (names from a classes.json, dataset.json or ITK-SNAP file beside them), DICOM
SEG and RTSTRUCT. Every refusal is one message that names the file and says why.
"""

from __future__ import annotations

import os

import pydicom

from birdview.core.errors import BirdViewError
from birdview.core.io.nifti import NIFTI_SUFFIXES, load_nifti, scan_nifti
from birdview.core.labels import LabelMap, LabelMismatchError, match_volume
from birdview.core.labels_dicom import read_rtstruct, read_seg
from birdview.core.labels_names import find_names
from birdview.core.resources import sample_ct_dir
from birdview.core.volume import Volume

__all__ = ["LABEL_FILE_FILTER", "bundled_labels_path", "open_labels"]

LABEL_FILE_FILTER = "Segmentations (*.nii *.nii.gz *.dcm *.DCM);;All files (*)"

_SEG_UID = "1.2.840.10008.5.1.4.1.1.66.4"
_RTSTRUCT_UID = "1.2.840.10008.5.1.4.1.1.481.3"


def open_labels(path: str | os.PathLike, study: Volume) -> LabelMap:
    """The labels of the file at ``path``, placed on ``study``'s (canonical) grid.

    Raises:
        LabelMismatchError: the file belongs to another study or grid.
        ValueError: the file cannot be read as a segmentation (with the reason).
    """
    path = os.fspath(path)
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise ValueError(f"Unable to open {name!r} as a segmentation as there is no such file")
    if path.lower().endswith(NIFTI_SUFFIXES):
        return _open_nifti(path, study)
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        sop_class = str(header.get("SOPClassUID", ""))
    except Exception as exc:  # noqa: BLE001 - unreadable: one message for the file
        raise ValueError(f"Unable to open {name!r} as a segmentation: {exc}") from exc
    if sop_class == _SEG_UID:
        return read_seg(path, study)
    if sop_class == _RTSTRUCT_UID:
        return read_rtstruct(path, study)
    raise ValueError(
        f"Unable to open {name!r} as a segmentation as it is neither a NIfTI label map, a "
        f"DICOM SEG nor an RTSTRUCT (SOP Class {sop_class or 'missing'!r})"
    )


def _open_nifti(path: str, study: Volume) -> LabelMap:
    name = os.path.basename(path)
    try:
        volume = load_nifti(scan_nifti(path))
    except BirdViewError as exc:
        raise ValueError(f"Unable to open {name!r} as a segmentation: {exc}") from exc
    if volume.is_rgb:
        raise ValueError(f"Unable to open {name!r} as a segmentation as it holds colour pixels")
    names = find_names(path)
    notes: tuple[str, ...] = ()
    if not names.names:
        found = os.path.basename(names.path)
        notes = (
            (f"{found} names no values for this file; labels are numbered",)
            if found
            else ("no class names file beside it; labels are numbered",)
        )
    try:
        return match_volume(
            volume,
            study,
            names.names,
            colours=names.colours,
            source=name,
            kind="nifti",
            path=path,
            notes=notes,
        )
    except LabelMismatchError:
        raise
    except ValueError as exc:  # values that are no labels
        raise ValueError(f"Unable to open {name!r} as a segmentation: {exc}") from exc


def bundled_labels_path(study: Volume | None) -> str | None:
    """The bundled label map when ``study`` is the bundled sample CT, else None."""
    folder = sample_ct_dir()
    if study is None or folder is None or not study.sources:
        return None
    source_folder = os.path.dirname(os.path.realpath(study.sources[0].path))
    if os.path.normcase(source_folder) != os.path.normcase(os.path.realpath(folder)):
        return None
    path = folder.parent / "totalseg_ct_labels" / "example_seg_dicom.nii.gz"
    return str(path) if path.is_file() else None
