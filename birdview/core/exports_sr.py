"""The DICOM SR export: a conversation as a Comprehensive 3D SR measurement report (TID 1500).

Every answered turn becomes a measurement group holding the question and the answer as people
read it (`assistant.readable_answer`, never the model's box markup) and the model that answered
(TID 4019 Algorithm Identification: name, checkpoint SHA-256 as the version, family and
precision as parameters):

- a ground answer: one planar ROI (TID 1410) per box;
- a refer answer: a planar ROI on the box the user drew and asked about;
- a volume sweep: one volumetric ROI (TID 1411) per structure, made of one image region per
  slice it was found on, each referencing its source image (a sweep off the acquisition plane:
  a volume surface of polygons in patient mm);
- an answer without any box (a description, "not found"): a group without a region
  (TID 1501) that references the slice's source image.

A box on the acquisition plane is a closed POLYLINE in the pixels of the source instance it
lies on; other boxes are a SCOORD3D polygon in LPS mm where the study has a Frame of
Reference, and are left out (with the reason returned) otherwise.

The report is UTF-8 (Specific Character Set ISO_IR 192), so answers keep their dashes and
symbols. The study's identity (`Volume.identity`) is written as observation context of the
whole report: in DICOM SR, observation context applies to every item below it, and the
identity says which study every observation is about. It uses BirdView's own coding scheme
("99BIRDVIEW", declared in the Coding Scheme Identification Sequence), as do the question and
answer items. The AI and research notices close the report (a TID 1500 qualitative
evaluations container) and are in the series description.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import highdicom as hd
from pydicom import Dataset
from pydicom.uid import generate_uid

from birdview.core._sr_sources import (
    NO_FRAME_OF_REFERENCE,
    SourceImages,
    anonymise_header,
    is_dicom,
    source_pixel_corners,
)
from birdview.core.assistant import SWEEP_TASK, readable_answer
from birdview.core.box import Box
from birdview.core.exports import AI_NOTICE, NOTICE, is_error, write_export
from birdview.core.measure import Measurement
from birdview.core.measure_sr import measurement_groups
from birdview.core.session_store import RecordedTurn, SessionRecord, ensure_same_study
from birdview.core.slab import Slab
from birdview.core.volume import Volume

__all__ = ["SCHEME", "SrExport", "export_dicom_sr", "source_pixel_corners"]

logger = logging.getLogger(__name__)

SCHEME = "99BIRDVIEW"  # a private coding scheme ("99" prefix, DICOM PS3.16 section 8)
_CONCEPTS = {
    "question": ("QUESTION", "Question to the model"),
    "answer": ("ANSWER", "Answer of the model"),
    "drawn": ("DRAWN", "Region drawn by the user"),
    "study": ("STUDYIDENTITY", "BirdView study identity"),
    "measured": ("USERMEASUREMENT", "Measurement by the user"),
    "calibration": ("CALIBRATION", "Length calibration"),
    "annotation": ("USERANNOTATION", "Annotation by the user"),
    "slab": ("SLABSTATISTICS", "ROI statistics on the thick slab shown"),
    "mask": ("MASK", "How the mask was made"),
    "axes": ("MASKAXES", "Where the mask's axes were measured"),
}


@dataclass(frozen=True)
class SrExport:
    """What `export_dicom_sr` wrote: how many measurement groups, and why something was left
    out ("turn 2: …")."""

    path: str
    groups: int
    skipped: tuple[str, ...]
    sop_instance_uid: str


def export_dicom_sr(
    record: SessionRecord,
    volume: Volume,
    path: str | os.PathLike,
    *,
    anonymise: bool = False,
    measurements: Sequence[Measurement] = (),
    masks: tuple = (),
    slab: Slab | None = None,
) -> SrExport:
    """Write the conversation ``record`` about ``volume`` as a DICOM SR (see the module),
    with the user's ``measurements`` (`birdview.core.measure_sr`; an ROI measured while the
    views showed an active ``slab`` keeps its slice's statistics and adds the slab's, said
    so) and, given ``masks`` as
    (`mask_exports.NamedMask` list, their SEG dataset), a volumetric group per mask
    (`birdview.core.mask_sr`).

    Raises:
        ValueError: ``record`` is about another study than ``volume``, the study is not
            DICOM, or there is nothing to write.
        OSError: the file could not be written.
    """
    ensure_same_study(record, volume)
    if not volume.sources or not volume.modality or not is_dicom(volume.sources[0].path):
        raise ValueError("Unable to export a DICOM SR as the study is not DICOM")
    sources = SourceImages(volume, anonymise)
    builder = _Groups(sources, record)
    for n, turn in enumerate(record.turns, start=1):
        builder.add_turn(n, turn)
    asked_about = {t.region for t in record.turns if t.region is not None}
    for box in record.user_boxes:
        if box not in asked_about:
            builder.add_drawn(box)
    measured, left_out = measurement_groups(sources, measurements, _text, slab)
    builder.groups += measured
    builder.skipped += left_out
    if masks:
        from birdview.core.mask_sr import mask_groups

        builder.groups += mask_groups(sources, masks[0], masks[1], _text)
    if not builder.groups:
        raise ValueError(
            "Unable to export a DICOM SR as there is nothing to write: no answer and no drawn "
            "region could be placed" + (f" ({builder.skipped[0]})" if builder.skipped else "")
        )
    evidence = sources.evidence() + ([masks[1]] if masks else [])
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=_observer(record)),
        procedure_reported=hd.sr.CodedConcept("363679005", "SCT", "Imaging procedure"),
        imaging_measurements=builder.groups,
    )
    _add_identity_and_notices(report[0], record)
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=report[0],
        series_instance_uid=generate_uid(),
        series_number=9901,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="BirdView",
        series_description="BirdView AI findings — not a diagnosis",
        specific_character_set="ISO_IR 192",  # UTF-8: answers keep "–", "×", accents
    )
    sr.CodingSchemeIdentificationSequence = [_scheme_item()]
    if anonymise:
        anonymise_header(sr)
    buffer = io.BytesIO()
    sr.save_as(buffer, enforce_file_format=True)
    write_export(path, buffer.getvalue())
    logger.info("exported a DICOM SR with %d groups for %s", len(builder.groups), volume.short_id)
    return SrExport(
        os.fspath(path), len(builder.groups), tuple(builder.skipped), str(sr.SOPInstanceUID)
    )


def _text(key_or_code: str | hd.sr.CodedConcept, value: str, relationship: str = "CONTAINS"):
    """A TEXT item named by one of BirdView's concepts (a `_CONCEPTS` key) or by a code."""
    if isinstance(key_or_code, str):
        code, meaning = _CONCEPTS[key_or_code]
        key_or_code = hd.sr.CodedConcept(code, SCHEME, meaning)
    return hd.sr.TextContentItem(name=key_or_code, value=value, relationship_type=relationship)


class _Groups:
    """The report's measurement groups, one turn at a time, and what could not be placed."""

    def __init__(self, sources: SourceImages, record: SessionRecord) -> None:
        self.sources = sources
        self.family = record.model.family
        self.algorithm = _algorithm(record)
        self.groups: list = []
        self.skipped: list[str] = []

    def add_turn(self, n: int, turn: RecordedTurn) -> None:
        if is_error(turn):
            self.skipped.append(f"turn {n}: the model gave no answer")
            return
        texts = [_text("question", turn.question)]
        answer = readable_answer(turn.answer, self.family)
        if answer:
            texts.append(_text("answer", answer))
        before = len(self.groups)
        if turn.task == SWEEP_TASK:
            self._sweep(n, turn, texts)
        else:
            if turn.region is not None:
                self._planar(n, turn.region, f"Turn {n}: region asked about", texts)
            for k, box in enumerate(turn.boxes, start=1):
                self._planar(n, box, f"Turn {n}: {box.label or f'box {k}'}", texts)
        if len(self.groups) == before:  # nothing placed: the words still belong in the report
            self._without_region(n, turn, texts)

    def add_drawn(self, box: Box) -> None:
        text = _text("drawn", "Drawn by the user; no question was asked about it.")
        self._planar(0, box, box.label or "Drawn region", [text])

    def _planar(self, n: int, box: Box, identifier: str, texts: list) -> None:
        region, reason = self.sources.region(box)
        if region is None:
            self.skipped.append(f"turn {n}: {box.plane.value} box: {reason}" if n else reason)
            return
        group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=_tracking(identifier),
            referenced_region=region,
            algorithm_id=self.algorithm,
        )
        self._add(group, texts)

    def _sweep(self, n: int, turn: RecordedTurn, texts: list) -> None:
        """One volumetric ROI: an image region per slice, each in its source image; off the
        acquisition plane, a surface of polygons in patient mm."""
        if not turn.boxes:
            return
        identifier = f"Turn {n}: {turn.question}"
        regions = [self.sources.image_region(b) for b in turn.boxes]
        if all(r is not None for r in regions):
            reference = {"referenced_regions": regions}
        elif len(turn.boxes) == 1:  # a surface needs two polygons
            self._planar(n, turn.boxes[0], identifier, texts)
            return
        elif self.sources.frame_of_reference():
            reference = {"referenced_volume_surface": self.sources.surface(turn.boxes)}
        else:
            self.skipped.append(f"turn {n}: the sweep's boxes: {NO_FRAME_OF_REFERENCE}")
            return
        group = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=_tracking(identifier), algorithm_id=self.algorithm, **reference
        )
        self._add(group, texts)

    def _without_region(self, n: int, turn: RecordedTurn, texts: list) -> None:
        """A group without a region (TID 1501), pointing at the slice's image if it has one."""
        found = None
        if turn.plane and turn.task != SWEEP_TASK:  # a sweep is about every slice, not one
            found = self.sources.source_of(turn.plane, turn.slice_index)
        images = None
        if found is not None:
            ds, frames = found
            images = [
                hd.sr.SourceImageForMeasurementGroup(ds.SOPClassUID, ds.SOPInstanceUID, frames)
            ]
        group = hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=_tracking(f"Turn {n}: {turn.question}"),
            algorithm_id=self.algorithm,
            source_images=images,
        )
        self._add(group, texts)

    def _add(self, group, texts: list) -> None:
        group[0].ContentSequence.extend(texts)
        self.groups.append(group)


def _tracking(identifier: str) -> hd.sr.TrackingIdentifier:
    return hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=identifier)


def _algorithm(record: SessionRecord) -> hd.sr.AlgorithmIdentification:
    """The model as TID 4019: its name, its checkpoint's SHA-256 as the version (the exact
    weights), family and precision as parameters."""
    model = record.model
    parameters = [
        f"{k}: {v}" for k, v in (("family", model.family), ("precision", model.precision)) if v
    ]
    return hd.sr.AlgorithmIdentification(
        name=model.name or "unknown model",
        version=f"sha256:{model.checkpoint_sha256}" if model.checkpoint_sha256 else "unknown",
        parameters=parameters or None,
        manufacturer="BirdView",
    )


def _observer(record: SessionRecord) -> hd.sr.ObserverContext:
    """The model as the report's observer device (name, family as its model name)."""
    model = record.model
    entropy = ["birdview-model", model.name, model.checkpoint_sha256]
    return hd.sr.ObserverContext(
        observer_type=hd.sr.CodedConcept("121007", "DCM", "Device"),
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(entropy_srcs=entropy),
            name=model.name or "unknown model",
            manufacturer_name="BirdView",
            model_name=model.family or None,
        ),
    )


def _add_identity_and_notices(root: Dataset, record: SessionRecord) -> None:
    """The study identity right after the observer context; the notices at the end."""
    items = root.ContentSequence
    last_context = max(
        n for n, item in enumerate(items) if item.RelationshipType == "HAS OBS CONTEXT"
    )
    items.insert(last_context + 1, _text("study", record.study_identity, "HAS OBS CONTEXT"))
    evaluations = hd.sr.ContainerContentItem(
        name=hd.sr.CodedConcept("126010", "DCM", "Qualitative Evaluations"),
        relationship_type="CONTAINS",
    )
    comment = hd.sr.CodedConcept("121106", "DCM", "Comment")
    evaluations.ContentSequence = [_text(comment, f"{AI_NOTICE} {NOTICE}")]
    items.append(evaluations)


def _scheme_item() -> Dataset:
    """Declares BirdView's private coding scheme, as DICOM asks of local codes."""
    item = Dataset()
    item.CodingSchemeDesignator = SCHEME
    item.CodingSchemeName = "BirdView concepts"
    item.CodingSchemeResponsibleOrganization = "BirdView project"
    return item
