"""Exporting results: JSON (boxes in pixels, voxels and mm), an annotated PNG, a DICOM SR.

Boxes live on the canonical volume (`geometry.to_canonical`). Every export states that the
results are for research and teaching only. With ``anonymise=True`` no patient name, ID or birth
date is written. Files are written atomically (`session_store.write_atomic`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from birdview.core import geometry
from birdview.core.box import Box
from birdview.core.display import Window, apply_window
from birdview.core.geometry import Plane
from birdview.core.session_store import ModelInfo, SessionRecord, box_to_dict, write_atomic
from birdview.core.volume import Volume

__all__ = [
    "BOX_COLOURS",
    "NOTICE",
    "SrExport",
    "box_colour",
    "export_dicom_sr",
    "export_json",
    "export_png",
    "png_size",
    "source_pixel_corners",
]

logger = logging.getLogger(__name__)

NOTICE = "Research and teaching use — not for clinical decisions."
EXPORT_VERSION = 1
# Saturated colours, never grey, so a box can be told from the (grey) image underneath.
BOX_COLOURS: tuple[tuple[int, int, int], ...] = tuple(
    tuple(int(c[i : i + 2], 16) for i in (0, 2, 4))
    for c in "ff4040 40dc40 4080ff ffc800 ff00ff 00e6e6 ff8000 a060ff".split()
)
_PATIENT_KEYS = (
    ("patient_name", "name"),
    ("patient_id", "id"),
    ("patient_birth_date", "birth_date"),
)


def box_colour(n: int) -> tuple[int, int, int]:
    """The colour of the n-th box of an export."""
    return BOX_COLOURS[n % len(BOX_COLOURS)]


# -- JSON -----------------------------------------------------------------------------------


def export_json(
    record_or_turns: SessionRecord | Iterable,
    volume: Volume,
    path: str | os.PathLike,
    *,
    anonymise: bool = False,
) -> None:
    """Write every box with the turn that produced it, in pixels, voxel corners and LPS mm.

    ``record_or_turns`` is a `SessionRecord` or turns (`RecordedTurn` or `prompts.Turn`).
    """
    record = record_or_turns if isinstance(record_or_turns, SessionRecord) else None
    turns = record.turns if record else tuple(record_or_turns)
    findings = [_finding(volume, b, "model", n, t) for n, t in enumerate(turns) for b in t.boxes]
    findings += [
        _finding(volume, b, "user", None, None) for b in (record.user_boxes if record else ())
    ]
    study: dict = {
        "study_identity": record.study_identity if record else volume.identity,
        "series_description": (record.series_description if record else "")
        or str(volume.metadata.get("series_description", "")),
        "modality": volume.modality,
        "anonymised": anonymise,
    }
    if not anonymise:
        study["patient"] = {
            out: str(volume.metadata[key]) for key, out in _PATIENT_KEYS if key in volume.metadata
        }
        study["study_paths"] = list(record.study_paths) if record else []
    model = record.model if record else ModelInfo()
    data = {
        "format": "birdview-export",
        "export_version": EXPORT_VERSION,
        "notice": NOTICE,
        "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "created_at": record.created_at if record else "",
        "updated_at": record.updated_at if record else "",
        "model": {"name": model.name, "family": model.family, "precision": model.precision},
        "study": study,
        "findings": findings,
    }
    write_atomic(path, json.dumps(data, ensure_ascii=False, indent=1))
    logger.info("exported %d findings as JSON for %s", len(findings), volume.short_id)


def _finding(volume: Volume, box: Box, source: str, turn_index: int | None, turn) -> dict:
    return {
        "source": source,
        "turn_index": turn_index,
        "question": getattr(turn, "question", None),
        "answer": getattr(turn, "answer", None),
        "task": getattr(turn, "task", None),
        "asked_at": getattr(turn, "asked_at", None),
        "box": box_to_dict(box),
        "voxel_corners_ijk": box.to_voxel_corners(volume).tolist(),
        "lps_mm_corners": box.to_lps_mm(volume).tolist(),
    }


# -- PNG ------------------------------------------------------------------------------------


def png_size(volume: Volume, plane: Plane, slice_index: int, *, zoom: float = 1.0):
    """(width, height) of the PNG of a slice: the smaller pixel side becomes ``zoom`` output
    pixels and the other is stretched so anisotropic pixels keep their true shape."""
    rows, cols = geometry.extract_slice(volume, plane, slice_index).shape[:2]
    sx, sy = _scales(volume, plane, zoom)
    return max(1, round(cols * sx)), max(1, round(rows * sy))


def _scales(volume: Volume, plane: Plane, zoom: float) -> tuple[float, float]:
    w_mm, h_mm = geometry.pixel_size_mm(volume, plane)
    unit = min(w_mm, h_mm)
    return zoom * w_mm / unit, zoom * h_mm / unit


def export_png(
    volume: Volume,
    plane: Plane,
    slice_index: int,
    window: Window,
    boxes: Sequence[Box],
    path: str | os.PathLike,
    *,
    anonymise: bool = False,
    overlay_lines: Sequence[str] = (),
    zoom: float = 1.0,
    colours: Sequence[int] | None = None,
) -> tuple[int, int]:
    """Render one slice with its boxes (colour `box_colour(colours[n])` for ``boxes[n]``,
    by default `box_colour(n)`), corner text and the research notice; returns the image size
    (see `png_size`). Boxes on other planes or slices are not drawn."""
    plane = Plane(plane)
    grey = apply_window(geometry.extract_slice(volume, plane, slice_index), window)
    image = Image.fromarray(np.ascontiguousarray(grey)).convert("RGB")
    size = png_size(volume, plane, slice_index, zoom=zoom)
    image = image.resize(size, Image.Resampling.BILINEAR)
    sx, sy = size[0] / grey.shape[1], size[1] / grey.shape[0]
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    for n, box in enumerate(boxes):
        if box.plane is not plane or box.slice_index != slice_index:
            continue
        colour = box_colour(colours[n] if colours is not None else n)
        x1, y1, x2, y2 = box.x1_px * sx, box.y1_px * sy, box.x2_px * sx, box.y2_px * sy
        draw.rectangle(
            [round(x1), round(y1), max(round(x1), round(x2) - 1), max(round(y1), round(y2) - 1)],
            outline=colour,
            width=2,
        )
        if box.label:
            _text(draw, (round(x1) + 2, max(0, round(y1) - 12)), box.label, font, colour)
    top_left = list(overlay_lines)
    if not anonymise:
        name, pid = volume.metadata.get("patient_name", ""), volume.metadata.get("patient_id", "")
        top_left = [t for t in (str(name), str(pid)) if t] + top_left
    count = geometry.slice_count(volume, plane)
    top_right = [str(volume.metadata.get("series_description", "")), plane.value]
    # Pillow's built-in font has no em dash.
    bottom = [f"Slice {slice_index + 1}/{count}", window.label(), NOTICE.replace("—", "-")]
    for n, line in enumerate(top_left):
        _text(draw, (4, 4 + 12 * n), line, font)
    for n, line in enumerate(t for t in top_right if t):
        width = draw.textlength(line, font=font)
        _text(draw, (max(4, size[0] - 4 - round(width)), 4 + 12 * n), line, font)
    for n, line in enumerate(bottom):
        _text(draw, (4, size[1] - 14 * (len(bottom) - n)), line, font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    write_atomic(path, buffer.getvalue())
    return size


def _text(draw, xy, text: str, font, fill=(255, 255, 255)) -> None:
    x, y = xy
    draw.text((x + 1, y + 1), text, fill=(0, 0, 0), font=font)
    draw.text((x, y), text, fill=fill, font=font)


# -- DICOM SR -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SrExport:
    """What `export_dicom_sr` wrote: indices of boxes written, and (index, reason) of skipped."""

    path: str
    written: tuple[int, ...]
    skipped: tuple[tuple[int, str], ...]
    sop_instance_uid: str


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


def export_dicom_sr(
    volume: Volume,
    boxes_with_text: Sequence[tuple[Box, str]],
    path: str | os.PathLike,
    *,
    anonymise: bool = False,
    model_name: str = "BirdView",
) -> SrExport:
    """Write a Comprehensive 3D SR (TID 1500 measurement report) with one planar ROI per box.

    A box on the acquisition plane becomes a closed POLYLINE in the pixels of the source
    instance it lies on; other boxes become a SCOORD3D polygon in LPS mm where the study has a
    Frame of Reference, and are skipped (with the reason returned) otherwise.

    Raises:
        ValueError: the study is not DICOM, or no box could be written.
    """
    import highdicom as hd
    import pydicom
    from pydicom.uid import generate_uid

    if not volume.sources or not volume.modality or not _is_dicom(volume.sources[0].path):
        raise ValueError("Unable to export a DICOM SR as the study is not DICOM")
    uid_seed = volume.series_uid or volume.sources[0].path
    cache: dict[str, pydicom.Dataset] = {}

    def header(file_path: str) -> pydicom.Dataset:
        if file_path not in cache:
            ds = pydicom.dcmread(file_path, stop_before_pixels=True)
            _repair_uids(ds, uid_seed)
            if anonymise:
                _anonymise(ds)
            cache[file_path] = ds
        return cache[file_path]

    acquisition = geometry.acquisition_plane(volume)
    groups, written, skipped = [], [], []
    for n, (box, text) in enumerate(boxes_with_text):
        tracking = hd.sr.TrackingIdentifier(
            uid=generate_uid(), identifier=box.label or f"Box {n + 1}"
        )
        region, reason = None, ""
        if box.plane is acquisition:
            centre = box.to_voxel_corners(volume).mean(axis=0)
            source = volume.source_at(tuple(int(round(c)) for c in centre))
            if source is None:
                reason = "the box's slice has no source file"
            else:
                ds = header(source.path)
                points = source_pixel_corners(volume, box, ds)
                frames = [source.frame + 1] if source.frame is not None else None
                region = hd.sr.ImageRegion(
                    graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
                    graphic_data=np.vstack([points, points[:1]]).astype(np.float32),
                    source_image=hd.sr.SourceImageForRegion(
                        referenced_sop_class_uid=ds.SOPClassUID,
                        referenced_sop_instance_uid=ds.SOPInstanceUID,
                        referenced_frame_numbers=frames,
                    ),
                )
        if region is None:
            frame_of_reference = header(volume.sources[0].path).get("FrameOfReferenceUID", "")
            if frame_of_reference:
                points = box.to_lps_mm(volume)
                region = hd.sr.ImageRegion3D(
                    graphic_type=hd.sr.GraphicTypeValues3D.POLYGON,
                    graphic_data=np.vstack([points, points[:1]]).astype(np.float32),
                    frame_of_reference_uid=str(frame_of_reference),
                )
            else:
                skipped.append((n, reason or _NO_FRAME_OF_REFERENCE))
                continue
        group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking, referenced_region=region
        )
        if text:  # the answer, as a free-text comment of the ROI's group
            comment = hd.sr.CodedConcept("121106", "DCM", "Comment")
            contains = hd.sr.RelationshipTypeValues.CONTAINS
            item = hd.sr.TextContentItem(
                name=comment, value=str(text)[:1024], relationship_type=contains
            )
            group[0].ContentSequence.append(item)
        groups.append(group)
        written.append(n)
    if not groups:
        raise ValueError("Unable to export a DICOM SR as none of the boxes could be placed")
    evidence = [cache[p] for p in dict.fromkeys(cache)]
    observer = hd.sr.ObserverContext(
        observer_type=hd.sr.CodedConcept("121007", "DCM", "Device"),
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(entropy_srcs=[model_name]), name=model_name
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=hd.sr.CodedConcept("363679005", "SCT", "Imaging procedure"),
        imaging_measurements=groups,
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=report[0],
        series_instance_uid=generate_uid(),
        series_number=9901,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="BirdView",
        series_description="BirdView findings (research use only)",
    )
    if anonymise:
        _anonymise(sr)
    buffer = io.BytesIO()
    sr.save_as(buffer, enforce_file_format=True)
    write_atomic(path, buffer.getvalue())
    logger.info("exported a DICOM SR with %d boxes for %s", len(groups), volume.short_id)
    return SrExport(os.fspath(path), tuple(written), tuple(skipped), str(sr.SOPInstanceUID))


def _is_dicom(path: str) -> bool:
    import pydicom

    try:
        pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except Exception:  # noqa: BLE001 - any failure to parse means "not DICOM" here
        return False
    return True


def _repair_uids(ds, seed: str) -> None:
    """Fill UIDs some files leave empty: SOP ones from File Meta, study/series generated
    (deterministically, so every slice of a series gets the same)."""
    from pydicom.uid import generate_uid

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


_NO_FRAME_OF_REFERENCE = "it is off the acquisition plane and the study has no Frame of Reference"
_EMPTIED = ("PatientBirthDate", "AccessionNumber", "StudyID", "ReferringPhysicianName")
_IDENTIFYING = _EMPTIED + tuple(
    "PatientBirthTime OtherPatientIDs OtherPatientIDsSequence OtherPatientNames PatientAddress "
    "InstitutionName InstitutionAddress PerformingPhysicianName OperatorsName".split()
)


def _anonymise(ds) -> None:
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
