"""The user's measurements in the DICOM SR: one TID 1410 planar ROI measurement group each.

Private to `birdview.core.exports_sr`, which calls `measurement_groups`. Each group holds the
measurement's region and its values as TID 300 numeric measurements with UCUM units:

- ruler: a 2-point POLYLINE and its Length (SCT 410668003, mm);
- angle: a 3-point POLYLINE (vertex in the middle) and its Angle (SCT 1483009, deg);
- rectangle / ellipse ROI: a closed POLYLINE / an ELLIPSE (major axis ends, then minor axis
  ends), its Area (SCT 42798000, mm2) and Mean, Standard Deviation, Minimum and Maximum of
  the pixels inside (Hounsfield units on CT, else the data's own unit or "no units");
- the user's arrow / text note (`birdview.core.annotations`): a 2-point POLYLINE (tail, tip) /
  a POINT, no values, and the note's text as a TEXT item ("Annotation by the user").

An ROI measured while the views showed a thick slab (MIP, MinIP, average) keeps the
statistics of the slice the region points to, and adds those of the projection the user saw:
the same four measurements with a Derivation (DCM 121401) of Maximum / Minimum intensity
projection (DCM 113078 / 113079; an average has no code and is in the text only), and a TEXT
item that names the slab (mode, thickness, slices) with its values and says that the
statistics without a derivation are the slice's.

On the acquisition plane the region is in the source image's pixels (SCOORD); on a
reformatted plane it is in patient mm (SCOORD3D) where the study has a Frame of Reference,
and left out with the reason otherwise. Where lengths are not in mm (an image without pixel
spacing) they are in UCUM "{pixel}", and the calibration each length was measured with is
written beside it as text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import highdicom as hd
import numpy as np
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from birdview.core._sr_sources import NO_FRAME_OF_REFERENCE, SourceImages
from birdview.core.geometry import pixel_size_mm
from birdview.core.measure import ANNOTATION_KINDS, Measured, Measurement, measure
from birdview.core.measure_store import points_lps_mm
from birdview.core.slab import Slab, slab_text
from birdview.core.volume import Volume

__all__ = ["measurement_groups"]

TextItem = Callable[[str, str], object]  # (BirdView concept key, value) → a TEXT item


def measurement_groups(
    sources: SourceImages, items: Sequence[Measurement], text: TextItem, slab: Slab | None = None
) -> tuple[list, list[str]]:
    """(measurement groups, why some measurements were left out); ROIs add the statistics of
    ``slab``'s projection when the views showed an active one."""
    volume = sources.volume
    groups, skipped = [], []
    for n, measurement in enumerate(items, start=1):
        region, reason = _region(sources, measurement)
        if region is None:
            skipped.append(f"measurement {n} ({measurement.kind}): {reason}")
            continue
        values = measure(measurement, volume)
        shown = measure(measurement, volume, slab) if slab is not None else values
        numbers = _numbers(values) + _slab_numbers(shown, slab)
        noun = "Annotation" if measurement.kind in ANNOTATION_KINDS else "Measurement"
        name = f"{noun} {n}: {measurement.label or measurement.kind}"
        group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=name),
            referenced_region=region,
            measurements=numbers or None,
        )
        notes = [text("measured", f"{measurement.kind} drawn by the user")]
        if shown.projection:
            notes.append(text("slab", _slab_note(measurement, volume, shown, slab)))
        if measurement.kind in ANNOTATION_KINDS and measurement.label:
            notes.append(text("annotation", measurement.label))
        if values.length is not None or values.area is not None:
            notes.append(text("calibration", values.calibration.source))
        group[0].ContentSequence.extend(notes)
        groups.append(group)
    return groups, skipped


# -- values ---------------------------------------------------------------------------------


def _numbers(values: Measured) -> list[hd.sr.Measurement]:
    length_unit = _length_unit(values.calibration.length_unit)
    found = []
    if values.length is not None:
        found.append((codes.SCT.Length, values.length, length_unit))
    if values.angle_deg is not None:
        found.append((codes.SCT.Angle, values.angle_deg, codes.UCUM.Degree))
    if values.area is not None:
        area_unit = (
            codes.UCUM.SquareMillimeter
            if values.calibration.length_unit == "mm"
            else hd.sr.CodedConcept("{pixel}2", "UCUM", "square pixel")
        )
        found.append((codes.SCT.Area, values.area, area_unit))
    if values.mean is not None:
        unit = _value_unit(values.calibration.value_unit)
        found += [
            (codes.SCT.Mean, values.mean, unit),
            (codes.SCT.StandardDeviation, values.sd, unit),
            (codes.SCT.Minimum, values.minimum, unit),
            (codes.SCT.Maximum, values.maximum, unit),
        ]
    return [hd.sr.Measurement(name=name, value=value, unit=unit) for name, value, unit in found]


_PROJECTIONS = {
    "mip": codes.DCM.MaximumIntensityProjection,
    "minip": codes.DCM.MinimumIntensityProjection,
}


def _slab_numbers(shown: Measured, slab: Slab | None) -> list[hd.sr.Measurement]:
    """The statistics of the slab's projection, derived by a coded projection (MIP, MinIP);
    none for the slice itself or an average (no code: the text says it)."""
    derivation = _PROJECTIONS.get(slab.mode) if slab is not None else None
    if not shown.projection or derivation is None:
        return []
    unit = _value_unit(shown.calibration.value_unit)
    return [
        hd.sr.Measurement(name=name, value=value, unit=unit, derivation=derivation)
        for name, value in (
            (codes.SCT.Mean, shown.mean),
            (codes.SCT.StandardDeviation, shown.sd),
            (codes.SCT.Minimum, shown.minimum),
            (codes.SCT.Maximum, shown.maximum),
        )
    ]


def _slab_note(measurement: Measurement, volume: Volume, shown: Measured, slab: Slab) -> str:
    """What the user saw on the slab, and which statistics are the referenced slice's."""
    where = slab_text(volume, measurement.plane, measurement.slice_index, slab)
    seen = "; ".join(shown.lines()[shown.lines().index(shown.projection) + 1 :])
    return (
        f"On screen the ROI statistics were taken on the {where}: {seen}. Mean, Standard "
        "Deviation, Minimum and Maximum without a derivation are of the referenced image only."
    )


def _length_unit(unit: str):
    if unit == "mm":
        return codes.UCUM.Millimeter
    return hd.sr.CodedConcept("{pixel}", "UCUM", "pixel")


def _value_unit(unit: str):
    if unit == "HU":
        return codes.UCUM.HounsfieldUnit
    if not unit:
        return hd.sr.CodedConcept("1", "UCUM", "no units")
    return hd.sr.CodedConcept(f"{{{unit}}}", "UCUM", unit)


# -- regions --------------------------------------------------------------------------------

_GRAPHIC_2D = {
    "ruler": hd.sr.GraphicTypeValues.POLYLINE,
    "angle": hd.sr.GraphicTypeValues.POLYLINE,
    "rectangle": hd.sr.GraphicTypeValues.POLYLINE,
    "ellipse": hd.sr.GraphicTypeValues.ELLIPSE,
    "arrow": hd.sr.GraphicTypeValues.POLYLINE,  # tail, then tip
    "text": hd.sr.GraphicTypeValues.POINT,
}
_GRAPHIC_3D = {
    "ruler": hd.sr.GraphicTypeValues3D.POLYLINE,
    "angle": hd.sr.GraphicTypeValues3D.POLYLINE,
    "rectangle": hd.sr.GraphicTypeValues3D.POLYGON,
    "ellipse": hd.sr.GraphicTypeValues3D.ELLIPSE,
    "arrow": hd.sr.GraphicTypeValues3D.POLYLINE,
    "text": hd.sr.GraphicTypeValues3D.POINT,
}


def _region(sources: SourceImages, measurement: Measurement):
    """(region, "") in the source image's pixels or in patient mm, or (None, why not)."""
    volume = sources.volume
    shape_points = _graphic_points(measurement, volume)
    found = sources.source_of(measurement.plane, measurement.slice_index)
    if found is not None:
        ds, frames = found
        pixels = _source_pixels(volume, measurement, shape_points, ds)
        return (
            hd.sr.ImageRegion(
                graphic_type=_GRAPHIC_2D[measurement.kind],
                graphic_data=pixels.astype(np.float32),
                source_image=hd.sr.SourceImageForRegion(
                    referenced_sop_class_uid=ds.SOPClassUID,
                    referenced_sop_instance_uid=ds.SOPInstanceUID,
                    referenced_frame_numbers=frames,
                ),
            ),
            "",
        )
    if not sources.frame_of_reference():
        return None, NO_FRAME_OF_REFERENCE
    lps = points_lps_mm(volume, measurement.plane, measurement.slice_index, shape_points)
    return (
        hd.sr.ImageRegion3D(
            graphic_type=_GRAPHIC_3D[measurement.kind],
            graphic_data=lps.astype(np.float32),
            frame_of_reference_uid=sources.frame_of_reference(),
        ),
        "",
    )


def _graphic_points(measurement: Measurement, volume: Volume) -> np.ndarray:
    """The shape's points in display pixel edges, as SR graphic data lists them: a closed
    rectangle outline, an ellipse's major then minor axis ends, else the points."""
    if measurement.kind == "rectangle":
        x1, y1, x2, y2 = measurement.edges_px()
        return np.array([(x1, y1), (x2, y1), (x2, y2), (x1, y2), (x1, y1)])
    if measurement.kind == "ellipse":
        x1, y1, x2, y2 = measurement.edges_px()
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        horizontal = [(x1, cy), (x2, cy)]
        vertical = [(cx, y1), (cx, y2)]
        w_mm, h_mm = pixel_size_mm(volume, measurement.plane)
        wide = (x2 - x1) * w_mm >= (y2 - y1) * h_mm
        return np.array(horizontal + vertical if wide else vertical + horizontal)
    return np.asarray(measurement.points_px, dtype=float)


def _source_pixels(volume: Volume, measurement: Measurement, points: np.ndarray, ds) -> np.ndarray:
    """Display pixel edges → the source image's SCOORD (column, row), whose (0, 0) is the
    top-left corner of the top-left pixel. Images without patient geometry (projection
    radiographs) are shown as stored, so their coordinates carry over unchanged."""
    if "ImagePositionPatient" not in ds or "ImageOrientationPatient" not in ds:
        return points
    lps = points_lps_mm(volume, measurement.plane, measurement.slice_index, points)
    origin = np.asarray([float(v) for v in ds.ImagePositionPatient])
    iop = np.asarray([float(v) for v in ds.ImageOrientationPatient])
    row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
    offset = lps - origin
    cols = offset @ iop[:3] / col_spacing
    rows = offset @ iop[3:] / row_spacing
    return np.stack([cols + 0.5, rows + 0.5], axis=1)
