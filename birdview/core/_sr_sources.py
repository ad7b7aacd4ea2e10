"""The source images a DICOM SR points into: their headers (read once, UIDs repaired,
anonymised on request) and the regions of boxes in their pixels or in patient mm.

Private to `birdview.core.exports_sr`; highdicom is imported here because this module is only
loaded when an SR is written.
"""

from __future__ import annotations

import hashlib

import highdicom as hd
import numpy as np
import pydicom
from pydicom.uid import generate_uid

from birdview.core import geometry
from birdview.core.box import Box
from birdview.core.geometry import Plane
from birdview.core.volume import Volume

__all__ = [
    "NO_FRAME_OF_REFERENCE",
    "SourceImages",
    "anonymise_header",
    "is_dicom",
    "source_pixel_corners",
]

NO_FRAME_OF_REFERENCE = "it is off the acquisition plane and the study has no Frame of Reference"


def source_pixel_corners(volume: Volume, box: Box, ds) -> np.ndarray:
    """The box's corners as (column, row) pixel coordinates of the source image ``ds``, in
    DICOM SCOORD convention (the top-left corner of the top-left pixel is (0, 0)), shape (4, 2).

    Uses the file's Image Position/Orientation (Patient) and Pixel Spacing ([row, column])."""
    corners = box.to_lps_mm(volume)
    origin = np.asarray([float(v) for v in ds.ImagePositionPatient])
    iop = np.asarray([float(v) for v in ds.ImageOrientationPatient])
    row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
    offset = corners - origin
    cols = offset @ iop[:3] / col_spacing
    rows = offset @ iop[3:] / row_spacing
    return np.stack([cols + 0.5, rows + 0.5], axis=1)


class SourceImages:
    """The study's source headers and the SR regions that point into them."""

    def __init__(self, volume: Volume, anonymise: bool) -> None:
        self.volume = volume
        self.acquisition = geometry.acquisition_plane(volume)
        self._anonymise = anonymise
        self._seed = volume.series_uid or volume.sources[0].path
        self._headers: dict[str, pydicom.Dataset] = {}
        self.first()  # the report takes its patient and study from this one

    def header(self, file_path: str) -> pydicom.Dataset:
        if file_path not in self._headers:
            ds = pydicom.dcmread(file_path, stop_before_pixels=True)
            _repair_uids(ds, self._seed)
            if self._anonymise:
                anonymise_header(ds)
            self._headers[file_path] = ds
        return self._headers[file_path]

    def first(self) -> pydicom.Dataset:
        return self.header(self.volume.sources[0].path)

    def evidence(self) -> list[pydicom.Dataset]:
        """Every header read so far: the first one and those regions point into."""
        return list(self._headers.values())

    def frame_of_reference(self) -> str:
        return str(self.first().get("FrameOfReferenceUID", "") or "")

    def source_of(self, plane: Plane | str, slice_index: int):
        """(header, frame numbers) of the image an acquisition-plane slice was read from;
        None for other planes (their slices are made from every image)."""
        if Plane(plane) is not self.acquisition:
            return None
        probe = Box(plane, slice_index, 0, 0, 1, 1)
        centre = probe.to_voxel_corners(self.volume).mean(axis=0)
        source = self.volume.source_at(tuple(int(round(c)) for c in centre))
        if source is None:
            return None
        frames = [source.frame + 1] if source.frame is not None else None
        return self.header(source.path), frames

    def image_region(self, box: Box) -> hd.sr.ImageRegion | None:
        """The box as a closed POLYLINE in its source image's pixels; None off the
        acquisition plane."""
        found = self.source_of(box.plane, box.slice_index)
        if found is None:
            return None
        ds, frames = found
        points = source_pixel_corners(self.volume, box, ds)
        return hd.sr.ImageRegion(
            graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
            graphic_data=np.vstack([points, points[:1]]).astype(np.float32),
            source_image=hd.sr.SourceImageForRegion(
                referenced_sop_class_uid=ds.SOPClassUID,
                referenced_sop_instance_uid=ds.SOPInstanceUID,
                referenced_frame_numbers=frames,
            ),
        )

    def polygon_mm(self, box: Box) -> np.ndarray:
        """The box as a closed polygon in LPS mm, shape (5, 3)."""
        points = box.to_lps_mm(self.volume)
        return np.vstack([points, points[:1]]).astype(np.float32)

    def region(self, box: Box):
        """(region, "") for a planar ROI: in the source image's pixels, else in patient mm;
        or (None, why not)."""
        region = self.image_region(box)
        if region is not None:
            return region, ""
        if not self.frame_of_reference():
            return None, NO_FRAME_OF_REFERENCE
        region_3d = hd.sr.ImageRegion3D(
            graphic_type=hd.sr.GraphicTypeValues3D.POLYGON,
            graphic_data=self.polygon_mm(box),
            frame_of_reference_uid=self.frame_of_reference(),
        )
        return region_3d, ""

    def surface(self, boxes) -> hd.sr.VolumeSurface:
        """Boxes on several slices of a plane other than the acquisition plane, as one volume
        surface of polygons in patient mm (needs a Frame of Reference)."""
        return hd.sr.VolumeSurface(
            graphic_type=hd.sr.GraphicTypeValues3D.POLYGON,
            graphic_data=[self.polygon_mm(b) for b in boxes],
            frame_of_reference_uid=self.frame_of_reference(),
            source_series=hd.sr.SourceSeriesForSegmentation(str(self.first().SeriesInstanceUID)),
        )


def is_dicom(path: str) -> bool:
    try:
        pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except Exception:  # noqa: BLE001 - any failure to parse means "not DICOM" here
        return False
    return True


def _repair_uids(ds: pydicom.Dataset, seed: str) -> None:
    """Fill UIDs some files leave empty: SOP ones from File Meta, study/series generated
    (deterministically, so every slice of a series gets the same)."""
    meta = getattr(ds, "file_meta", None)
    if not ds.get("SOPInstanceUID") and meta is not None:
        ds.SOPInstanceUID = meta.get("MediaStorageSOPInstanceUID", "") or generate_uid()
    if not ds.get("SOPClassUID") and meta is not None:
        ds.SOPClassUID = meta.get("MediaStorageSOPClassUID", "")
    if not ds.get("StudyInstanceUID"):
        ds.StudyInstanceUID = generate_uid(entropy_srcs=["study", seed])
    if not ds.get("SeriesInstanceUID"):
        ds.SeriesInstanceUID = generate_uid(entropy_srcs=["series", seed])
    defaults = {"Modality": "OT", "PatientName": "", "PatientID": "", "PatientBirthDate": ""}
    for keyword in ("StudyID", "AccessionNumber", "PatientSex"):
        defaults[keyword] = ""
    for keyword, value in defaults.items():
        if keyword not in ds:
            setattr(ds, keyword, value)


_EMPTIED = ("PatientBirthDate", "AccessionNumber", "StudyID", "ReferringPhysicianName")
_IDENTIFYING = _EMPTIED + tuple(
    "PatientBirthTime OtherPatientIDs OtherPatientIDsSequence OtherPatientNames PatientAddress "
    "IssuerOfPatientID IssuerOfPatientIDQualifiersSequence InstitutionName InstitutionAddress "
    "PerformingPhysicianName OperatorsName".split()
)


def anonymise_header(ds: pydicom.Dataset) -> None:
    """Replace the patient's name and ID and drop birth date and other identifying fields."""
    pid = str(ds.get("PatientID", "") or "")
    ds.PatientName = "ANONYMOUS^"  # family name only (a bare one is ambiguous)
    ds.PatientID = hashlib.sha256(pid.encode()).hexdigest()[:16] if pid else "ANONYMOUS"
    for keyword in _IDENTIFYING:
        if keyword in ds:
            if keyword in _EMPTIED:
                setattr(ds, keyword, "")
            else:
                delattr(ds, keyword)
