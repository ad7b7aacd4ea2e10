"""What a pixel of a study measures: the `Calibration` that measurements state beside lengths.

The volume's spacing is what its reader found: (0028,0030) Pixel Spacing, else (0018,1164)
Imager Pixel Spacing (projection radiographs: CR, DX, MG...), else 1. Imager Pixel Spacing is
the size of a pixel *at the detector*; the anatomy, nearer the tube, is magnified onto it, so
a length measured with it is too long by the magnification. When the file gives (0018,1114)
Estimated Radiographic Magnification Factor, lengths are divided by it (DICOM PS3.3
C.8.11.7.1.1); otherwise the measurement says it is at the detector. On a projection image,
Pixel Spacing is taken as calibrated (to the patient, a fiducial...) unless it merely repeats
Imager Pixel Spacing without a (0028,0A02) Pixel Spacing Calibration Type. A length on an image with
no spacing at all (a PNG, a DICOM without spacing) is in pixels, and says so.

The header of the study's first file is read once per volume (a few elements, no pixels).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pydicom
from pydicom.errors import InvalidDicomError

from birdview.core.volume import Volume

__all__ = ["PROJECTION_MODALITIES", "Calibration", "calibration_of"]

logger = logging.getLogger(__name__)

# Modalities whose images are projections through the patient (magnified onto the detector).
PROJECTION_MODALITIES = frozenset({"CR", "DX", "MG", "RF", "XA", "IO", "PX", "DF"})
_TAGS = [
    "Modality",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "EstimatedRadiographicMagnificationFactor",
    "PixelSpacingCalibrationType",
    "RescaleType",
]
_CACHE_SIZE = 16


@dataclass(frozen=True)
class Calibration:
    """How lengths and values of a study are measured.

    Attributes:
        length_unit: "mm", or "px" when the image has no spacing.
        factor: what the volume's spacing is multiplied by (1 / ERMF where that applies).
        source: where the scale comes from, in words ("Pixel Spacing", "Imager Pixel Spacing
            at the detector, not corrected for magnification", ...), for exports.
        note: what to show beside a length ("" where nothing needs saying).
        value_unit: the unit of pixel values ("HU" on CT, a Rescale Type, or "").
    """

    length_unit: str = "mm"
    factor: float = 1.0
    source: str = "Pixel Spacing"
    note: str = ""
    value_unit: str = ""


_cache: dict[int, Calibration] = {}


def calibration_of(volume: Volume) -> Calibration:
    """The calibration of ``volume`` (remembered per volume object)."""
    found = _cache.get(volume.token)
    if found is None:
        found = _calibrate(volume)
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        _cache[volume.token] = found
    return found


def _calibrate(volume: Volume) -> Calibration:
    value_unit = "HU" if volume.modality.upper() == "CT" else ""
    header = _dicom_header(volume)
    if header is None:
        if volume.has_geometry or volume.spacing_mm != (1.0, 1.0, 1.0):
            return Calibration(source="voxel size of the file", value_unit=value_unit)
        return _uncalibrated(value_unit)
    rescale_type = str(header.get("RescaleType", "") or "").strip()
    if not value_unit and rescale_type and rescale_type.upper() != "US":  # US: unspecified
        value_unit = rescale_type
    modality = str(header.get("Modality", "") or "").upper()
    projection = modality in PROJECTION_MODALITIES
    kind = str(header.get("PixelSpacingCalibrationType", "") or "").strip().lower()
    if projection and not kind and _copied_from_detector(header):
        return _imager(header, value_unit)
    if _two_numbers(header.get("PixelSpacing")):
        note = f"calibrated ({kind})" if projection and kind else ""
        if projection and not note:
            note = "calibrated Pixel Spacing"
        return Calibration(source="Pixel Spacing", note=note, value_unit=value_unit)
    if _two_numbers(header.get("ImagerPixelSpacing")):
        return _imager(header, value_unit)
    if volume.spacing_mm[:2] != (1.0, 1.0):  # in functional groups (enhanced multi-frame)
        return Calibration(source="pixel spacing of the file", value_unit=value_unit)
    return _uncalibrated(value_unit)


def _imager(header: pydicom.Dataset, value_unit: str) -> Calibration:
    ermf = _positive(header.get("EstimatedRadiographicMagnificationFactor"))
    if ermf is not None:
        return Calibration(
            factor=1.0 / ermf,
            source=f"Imager Pixel Spacing corrected by the Estimated Radiographic "
            f"Magnification Factor {ermf:g}",
            note=f"corrected for magnification ×{ermf:g}",
            value_unit=value_unit,
        )
    return Calibration(
        source="Imager Pixel Spacing at the detector, not corrected for magnification",
        note="at detector (not magnification-corrected)",
        value_unit=value_unit,
    )


def _copied_from_detector(header: pydicom.Dataset) -> bool:
    """Pixel Spacing equal to Imager Pixel Spacing, with no calibration type: some systems
    copy the detector's spacing into Pixel Spacing, which then calibrates nothing."""
    pixel, imager = header.get("PixelSpacing"), header.get("ImagerPixelSpacing")
    if not (_two_numbers(pixel) and _two_numbers(imager)):
        return False
    return all(abs(float(a) - float(b)) < 1e-6 for a, b in zip(pixel, imager, strict=True))


def _uncalibrated(value_unit: str) -> Calibration:
    return Calibration(
        length_unit="px",
        source="none: the image has no pixel spacing",
        note="uncalibrated",
        value_unit=value_unit,
    )


def _dicom_header(volume: Volume) -> pydicom.Dataset | None:
    """The first source file's calibration elements, or None when it is not DICOM."""
    if not volume.sources:
        return None
    try:
        return pydicom.dcmread(volume.sources[0].path, stop_before_pixels=True, specific_tags=_TAGS)
    except (InvalidDicomError, OSError, ValueError, TypeError):
        return None  # NIfTI, a picture, or a file gone since: the reader's spacing stands


def _two_numbers(value: object) -> bool:
    try:
        numbers = [float(v) for v in value]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return False
    return len(numbers) == 2 and all(n > 0 for n in numbers)


def _positive(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
