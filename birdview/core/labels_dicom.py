"""DICOM SEG (through highdicom) and RTSTRUCT (contours rasterised) on the study's grid.

Both must name the study's Frame of Reference UID. SEG frames are then placed voxel for voxel
where their Image Position (Patient) puts them — each frame must lie exactly on one slice of
the study with its rows and columns along the study's axes, or the file is refused. RTSTRUCT
closed planar contours are filled on the study slice they lie on (even-odd rule, so a contour
inside another of the same structure on the same slice cuts a hole, as RT systems draw them).
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pydicom

from birdview.core.labels import (
    ORIGIN_TOLERANCE_MM,
    LabelMap,
    LabelMismatchError,
    label_map_from_array,
)
from birdview.core.volume import Volume

__all__ = ["FRAME_OF_REFERENCE_KEY", "read_rtstruct", "read_seg", "study_frame_of_reference"]

logger = logging.getLogger(__name__)

# A volume's metadata may carry its Frame of Reference UID under this key; otherwise it is
# read from the first file of the study.
FRAME_OF_REFERENCE_KEY = "frame_of_reference_uid"

# A contour lies on a slice when it is this close to the slice's centre (in voxels).
_ON_SLICE_VOXELS = 0.25


def study_frame_of_reference(study: Volume) -> str:
    """The study's Frame of Reference UID ("" when it has none, e.g. NIfTI)."""
    known = str(study.metadata.get(FRAME_OF_REFERENCE_KEY, "") or "")
    if known or not study.sources:
        return known
    try:
        header = pydicom.dcmread(
            study.sources[0].path, stop_before_pixels=True, specific_tags=["FrameOfReferenceUID"]
        )
    except Exception:  # noqa: BLE001 - not DICOM (NIfTI, PNG): no frame of reference
        return ""
    return str(header.get("FrameOfReferenceUID", "") or "")


def _check_frame(path: str, frame_uid: str, study: Volume) -> None:
    name = os.path.basename(path)
    mine = study_frame_of_reference(study)
    if not mine:
        raise LabelMismatchError(
            f"Unable to overlay {name!r} on this study as the study has no Frame of Reference "
            "UID to match it by (open the DICOM series it was made on)"
        )
    if frame_uid != mine:
        raise LabelMismatchError(
            f"Unable to overlay {name!r} on this study as its Frame of Reference UID "
            f"{frame_uid!r} is not the study's; it belongs to another study or scan"
        )


# -- SEG ------------------------------------------------------------------------------------


def read_seg(path: str, study: Volume) -> LabelMap:
    """A DICOM Segmentation's segments as labels (value = segment number).

    Raises:
        ValueError: not a readable SEG.
        LabelMismatchError: another Frame of Reference, or frames off the study's grid.
    """
    import highdicom as hd

    name = os.path.basename(path)
    try:
        seg = hd.seg.segread(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is one message for the file
        raise ValueError(f"Unable to read {name!r} as a DICOM SEG: {exc}") from exc
    _check_frame(path, str(seg.FrameOfReferenceUID), study)
    names = {int(s.SegmentNumber): str(s.SegmentLabel) for s in seg.SegmentSequence}
    if not names:
        raise ValueError(f"Unable to read {name!r} as a DICOM SEG as it has no segments")
    try:
        labels, overlaps = _place_segments(seg, study, name, max(names))
    except (AttributeError, KeyError, IndexError, TypeError) as exc:
        raise ValueError(
            f"Unable to read {name!r} as a DICOM SEG as a frame's position, orientation, "
            f"spacing or segment number is missing ({exc})"
        ) from exc
    notes = ("segments overlap; the higher number is shown where they do",) if overlaps else ()
    logger.info("SEG with %d segments placed", len(names))
    return label_map_from_array(
        labels, study, names, source=name, kind="seg", path=path, notes=notes
    )


def _place_segments(seg, study: Volume, name: str, top: int) -> tuple[np.ndarray, int]:
    """The label array of every frame's segment, and how many voxels two segments claim."""
    labels = np.zeros(study.shape, dtype=np.uint8 if top < 256 else np.uint16)
    pixels = seg.pixel_array.reshape(-1, int(seg.Rows), int(seg.Columns))
    fractional = str(seg.SegmentationType) == "FRACTIONAL"
    threshold = float(seg.get("MaximumFractionalValue", 255)) / 2 if fractional else 0
    overlaps = 0
    for n, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        # Shared when every frame has the same segment (highdicom does so for one segment).
        segment = _functional(seg, item, "SegmentIdentificationSequence")
        number = int(segment.ReferencedSegmentNumber)
        mask = pixels[n] > threshold
        where = _frame_voxels(seg, item, study, name, n + 1)
        target = tuple(a[mask] for a in where)
        overlaps += int(np.count_nonzero(labels[target]))
        labels[target] = number
    return labels, overlaps


def _functional(seg, item, sequence: str):
    """A functional group item, per frame where given, else shared."""
    if sequence in item:
        return item[sequence].value[0]
    return seg.SharedFunctionalGroupsSequence[0][sequence].value[0]


def _frame_voxels(seg, item, study: Volume, name: str, frame: int) -> tuple[np.ndarray, ...]:
    """(k, j, i) index arrays of every pixel of one frame on the study's grid."""
    position = np.asarray(_functional(seg, item, "PlanePositionSequence").ImagePositionPatient)
    cosines = np.asarray(
        _functional(seg, item, "PlaneOrientationSequence").ImageOrientationPatient, dtype=float
    )
    row_mm, col_mm = (
        float(v) for v in _functional(seg, item, "PixelMeasuresSequence").PixelSpacing
    )
    return place_plane(
        study,
        position.astype(float),
        cosines[:3] * col_mm,  # one column step
        cosines[3:] * row_mm,  # one row step
        (int(seg.Rows), int(seg.Columns)),
        f"{name!r} frame {frame}",
    )


def place_plane(
    study: Volume,
    corner_lps: np.ndarray,
    column_step_lps: np.ndarray,
    row_step_lps: np.ndarray,
    size: tuple[int, int],
    what: str,
) -> tuple[np.ndarray, ...]:
    """The (k, j, i) voxels of a rows×cols plane whose first pixel centre is at
    ``corner_lps``, when every pixel lands on a voxel centre of ``study``.

    Raises:
        LabelMismatchError: the plane is between slices, oblique to the grid, scaled
            differently or reaches outside it.
    """
    start = study.lps_to_index(corner_lps)
    steps = [study.lps_to_index(corner_lps + d) - start for d in (column_step_lps, row_step_lps)]
    rounded = np.round(start)
    off_mm = np.linalg.norm(study.index_to_lps(rounded) - corner_lps)
    units = [np.round(s) for s in steps]
    if off_mm > ORIGIN_TOLERANCE_MM or any(
        np.abs(s - u).max() > 1e-3 or np.abs(u).sum() != 1
        for s, u in zip(steps, units, strict=True)
    ):
        raise LabelMismatchError(
            f"Unable to overlay {what} on this study as it does not lie on the study's voxels "
            "(another grid of the same frame of reference; nothing is resampled)"
        )
    rows, cols = np.mgrid[0 : size[0], 0 : size[1]]
    ijk = [rounded[a] + cols * units[0][a] + rows * units[1][a] for a in range(3)]
    n_k, n_j, n_i = study.shape
    limits = (n_i, n_j, n_k)
    if any(v.min() < 0 or v.max() >= n for v, n in zip(ijk, limits, strict=True)):
        raise LabelMismatchError(
            f"Unable to overlay {what} on this study as it reaches outside the study's grid"
        )
    return tuple(v.astype(np.intp) for v in (ijk[2], ijk[1], ijk[0]))


# -- RTSTRUCT -------------------------------------------------------------------------------


def read_rtstruct(path: str, study: Volume) -> LabelMap:
    """An RT Structure Set's closed planar contours, filled on the study's slices (value =
    position of the ROI in the file, 1-based; points and open contours are not drawn).

    Raises:
        ValueError: not a readable RT Structure Set.
        LabelMismatchError: another Frame of Reference.
    """
    name = os.path.basename(path)
    try:
        ds = pydicom.dcmread(path, force=True)
        frame_uid = str(ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID)
        rois = {int(r.ROINumber): str(r.ROIName) for r in ds.StructureSetROISequence}
        contours = list(ds.ROIContourSequence)
    except Exception as exc:  # noqa: BLE001 - any reader failure is one message for the file
        raise ValueError(f"Unable to read {name!r} as an RT Structure Set: {exc}") from exc
    _check_frame(path, frame_uid, study)
    labels = np.zeros(study.shape, dtype=np.uint8 if len(contours) < 256 else np.uint16)
    names, colours, notes, overlaps = {}, {}, [], 0
    for value, roi in enumerate(contours, start=1):
        number = int(roi.ReferencedROINumber)
        names[value] = rois.get(number, f"ROI {number}")
        if "ROIDisplayColor" in roi:
            colours[value] = tuple(int(c) for c in roi.ROIDisplayColor)
        mask = _roi_mask(roi, study, notes, names[value])
        overlaps += int(np.count_nonzero(labels[mask]))
        labels[mask] = value
    if overlaps:
        notes.append("structures overlap; the later one in the file is shown where they do")
    return label_map_from_array(
        labels,
        study,
        names,
        colours=colours,
        source=name,
        kind="rtstruct",
        path=path,
        notes=tuple(notes),
    )


def _roi_mask(roi, study: Volume, notes: list[str], name: str) -> np.ndarray:
    mask = np.zeros(study.shape, dtype=bool)
    for contour in roi.get("ContourSequence", []):
        if str(contour.get("ContourGeometricType", "")) != "CLOSED_PLANAR":
            continue
        points = np.asarray(contour.ContourData, dtype=float).reshape(-1, 3)
        ijk = study.lps_to_index(points)
        k = float(np.median(ijk[:, 2]))
        if np.ptp(ijk[:, 2]) > 2 * _ON_SLICE_VOXELS or abs(k - round(k)) > _ON_SLICE_VOXELS:
            notes.append(f"a contour of {name!r} lies between axial slices and is not drawn")
            continue
        if not 0 <= round(k) < study.shape[0]:
            notes.append(f"a contour of {name!r} lies outside the study's slices")
            continue
        plane = mask[int(round(k))]
        plane ^= fill_polygon(ijk[:, 0], ijk[:, 1], plane.shape)
    return mask


def fill_polygon(x: np.ndarray, y: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The pixels (rows, cols) whose centres lie inside the polygon (x = column, y = row, in
    pixel-centre coordinates), by the even-odd rule; a centre on a left or top edge is in."""
    inside = np.zeros(shape, dtype=bool)
    x0, y0 = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    first = max(int(np.ceil(y0.min())), 0)
    last = min(int(np.floor(y0.max())), shape[0] - 1)
    for row in range(first, last + 1):
        crossing = (y0 <= row) != (y1 <= row)
        if not crossing.any():
            continue
        t = (row - y0[crossing]) / (y1[crossing] - y0[crossing])
        xs = np.sort(x0[crossing] + t * (x1[crossing] - x0[crossing]))
        for left, right in zip(xs[0::2], xs[1::2], strict=False):
            start = max(int(np.ceil(left)), 0)
            stop = min(int(np.ceil(right)), shape[1])  # centres in [left, right)
            if start < stop:
                inside[row, start:stop] ^= True
    return inside
