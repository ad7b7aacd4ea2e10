"""Imaging modalities as Med-GRIT keys them, as people write them, and as DICOM codes them.

One table for the app's model-card checks and the trainer's data builder alike."""

from __future__ import annotations

__all__ = ["DICOM_MODALITIES", "MODALITY_WORDS"]

# Med-GRIT's modality keys and the two it lacks (pathology, OCT), with the word people use.
MODALITY_WORDS = {
    "ct": "CT",
    "mr": "MR",
    "x": "X-ray",
    "pet": "PET",
    "endoscopy": "endoscopy",
    "dermoscopy": "dermoscopy",
    "fundus": "fundus",
    "ultrasound": "ultrasound",
    "pathology": "pathology",
    "oct": "OCT",
}

# DICOM Modality (0008,0060) codes → keys.
DICOM_MODALITIES = {
    "CT": "ct",
    "MR": "mr",
    "PT": "pet",
    "CR": "x",
    "DX": "x",
    "DR": "x",
    "RG": "x",
    "US": "ultrasound",
    "ES": "endoscopy",
    "XC": "dermoscopy",
    "SM": "pathology",
    "OP": "fundus",
    "OPT": "oct",
}
