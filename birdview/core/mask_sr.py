"""Masks in the DICOM SR: one TID 1411 volumetric ROI measurement group per mask.

Private to `birdview.core.exports_sr`, which calls `mask_groups`. Each group references the
mask's segment of the SEG written with it (`mask_exports.export_seg`) and holds TID 300
numeric measurements with UCUM units (`masks.measure`):

- Volume (SCT 118565006) in mL;
- Long axis (SCT 103339001) and Short axis (SCT 103340004) in mm, on the axial slice where
  the mask is longest (that slice's source image is named beside them);
- Mean and Standard Deviation of the voxels inside (Hounsfield units on CT), left out for
  colour images.

The engine that made the mask is the group's algorithm (TID 4019); a mask the user drew or
edited says so in a text item.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import highdicom as hd
import numpy as np
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from birdview.core._sr_sources import SourceImages
from birdview.core.geometry import Plane
from birdview.core.masks import MaskMeasures, measure

__all__ = ["mask_groups"]

TextItem = Callable[[str, str], object]  # (BirdView concept key, value) → a TEXT item
MILLILITRE = hd.sr.CodedConcept("mL", "UCUM", "milliliter")


def mask_groups(sources: SourceImages, masks: Sequence, seg, text: TextItem) -> list:
    """One volumetric group per mask; segment n of ``seg`` is ``masks[n - 1]``."""
    volume = sources.volume
    groups = []
    for n, mask in enumerate(masks, start=1):
        values = mask.measures or measure(mask.voxels, volume)
        algorithm = None
        if mask.engine:
            algorithm = hd.sr.AlgorithmIdentification(
                name=mask.engine[:64], version="1", manufacturer="BirdView"
            )
        group = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(
                uid=generate_uid(), identifier=f"Mask {n}: {mask.name}"
            ),
            referenced_segment=_segment(sources, seg, n, mask.voxels),
            algorithm_id=algorithm,
            measurements=_numbers(values, volume.modality) or None,
        )
        made = f"{mask.algorithm_type.lower()} segmentation"
        made += f" by {mask.engine}" if mask.engine else " drawn by the user"
        notes = [text("mask", made + (", edited by the user" if mask.edited else ""))]
        if values.diameters is not None:
            notes.append(text("axes", _axes_slice(sources, values)))
        group[0].ContentSequence.extend(notes)
        groups.append(group)
    return groups


def _segment(sources: SourceImages, seg, n: int, voxels) -> hd.sr.ReferencedSegment:
    """Segment ``n`` of the SEG and the source images it lies on. (highdicom's
    ``from_segmentation`` looks for the segment number per frame, where a one-segment SEG
    keeps it in the shared groups.)"""
    volume = sources.volume
    axis = 2 - volume.source_axis  # the array axis the acquired images run along
    held = np.asarray(voxels, dtype=bool).any(axis=tuple(a for a in range(3) if a != axis))
    images = []
    for k, source in enumerate(volume.sources):
        if k < held.size and held[k]:
            ds = sources.header(source.path)
            images.append(hd.sr.SourceImageForSegmentation(ds.SOPClassUID, ds.SOPInstanceUID))
    return hd.sr.ReferencedSegment(
        sop_class_uid=seg.SOPClassUID,
        sop_instance_uid=seg.SOPInstanceUID,
        segment_number=n,
        source_images=images,
    )


def _numbers(values: MaskMeasures, modality: str) -> list[hd.sr.Measurement]:
    found = [(codes.SCT.Volume, values.volume_ml, MILLILITRE)]
    if values.diameters is not None:
        found += [
            (codes.SCT.LongAxis, values.diameters.long_mm, codes.UCUM.Millimeter),
            (codes.SCT.ShortAxis, values.diameters.short_mm, codes.UCUM.Millimeter),
        ]
    unit = (
        codes.UCUM.HounsfieldUnit
        if modality == "CT"
        else hd.sr.CodedConcept("1", "UCUM", "no units")
    )
    if math.isfinite(values.mean):
        found.append((codes.SCT.Mean, values.mean, unit))
    if math.isfinite(values.sd):
        found.append((codes.SCT.StandardDeviation, values.sd, unit))
    return [hd.sr.Measurement(name=name, value=value, unit=unit) for name, value, unit in found]


def _axes_slice(sources: SourceImages, values: MaskMeasures) -> str:
    """Where the axes were measured, for people: the axial slice and its source image."""
    k = values.diameters.slice_index
    found = sources.source_of(Plane.AXIAL, k)
    where = f"axial slice {k + 1} of {sources.volume.shape[0]}"
    if found is not None:
        where += f" (SOP Instance {found[0].SOPInstanceUID})"
    return f"Long and short axis measured on {where}"
