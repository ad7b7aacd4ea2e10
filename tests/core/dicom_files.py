"""Where the DICOM test files are, and small helpers shared by the DICOM tests."""

from __future__ import annotations

import os

import data_store
import pydicom

from birdview.core.io.dicom import scan_dicom
from tests.conftest import SHARED_DATA

DATA = str(SHARED_DATA)
TOTALSEG = os.path.join(DATA, "totalseg", "example_ct_dicom")
MR_DIR = os.path.join(DATA, "dcm4che_mr")
MULTIFRAME = os.path.join(DATA, "dicom_multiframe", "encapsulated", "multi-frame")
PYDICOM_FILES = os.path.join(os.path.dirname(pydicom.data.__file__), "test_files")
DATA_STORE = os.path.join(os.path.dirname(data_store.__file__), "data")


def files_in(folder: str) -> list[str]:
    names = (name for name in os.listdir(folder) if "LICENSE" not in name)
    return sorted(os.path.join(folder, name) for name in names)


def only_entry(paths: list[str]):
    entries, problems = scan_dicom(paths)
    assert problems == []
    assert len(entries) == 1, [e.description for e in entries]
    return entries[0]
