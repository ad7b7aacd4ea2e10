"""The current results of a study as DICOM instances of that study, ready to send to a PACS.

`results_for_pacs` gathers, for a DICOM study:

- the DICOM SR of the conversation, drawn regions and measurements (`exports_sr`);
- the key images (`key_images`) as a Key Object Selection pointing at their source images
  (`key_images_export`), and each key image's annotated PNG (`exports.export_png`, the same
  picture as the PNG export) as a Secondary Capture; with no key image marked, the slice on
  screen is captured instead;
- the open label overlay (a segmentation file) as a binary DICOM SEG on the study's source
  images, and the Masks panel's masks (the segmentation engine's, edited or drawn) as another.

Every instance copies the patient and study modules of the study's first source image, gets a
series of its own, and is refused unless its Study Instance UID is the open study's (study
isolation). Nothing is anonymised: a PACS files an instance by its patient and study, and an
anonymised one would land in no study at all.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image

from birdview.core import geometry
from birdview.core.box import Box
from birdview.core.display import Window
from birdview.core.exports import export_png
from birdview.core.geometry import Plane
from birdview.core.key_images import KeyImage
from birdview.core.labels import LabelMap
from birdview.core.mask_exports import NamedMask, masks_from_label_map, segmentation_of_masks
from birdview.core.measure import Measurement
from birdview.core.session_store import SessionRecord, ensure_same_study
from birdview.core.volume import Volume

__all__ = ["PacsResults", "results_for_pacs", "secondary_capture", "segmentation"]

logger = logging.getLogger(__name__)

BoxesOn = Callable[[Plane, int], tuple[Sequence[Box], Sequence[int]]]  # (boxes, colour slots)
SC_SERIES_NUMBER = 9903


@dataclass(frozen=True)
class PacsResults:
    """The instances to send, a plain summary, and what was left out and why."""

    datasets: tuple[pydicom.Dataset, ...]
    summary: str
    notes: tuple[str, ...] = ()

    def write(self, folder: str | os.PathLike) -> list[str]:
        """One file per instance in ``folder``, named by kind and number (no patient data)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for n, dataset in enumerate(self.datasets, start=1):
            path = folder / f"birdview-{n:02d}-{dataset.Modality.lower()}.dcm"
            dataset.save_as(path, enforce_file_format=True)
            paths.append(os.fspath(path))
        return paths


def results_for_pacs(
    record: SessionRecord,
    volume: Volume,
    *,
    window: Window,
    current: tuple[Plane, int],
    key_images: Sequence[KeyImage] = (),
    label_map: LabelMap | None = None,
    masks: Sequence[NamedMask] = (),
    boxes_on: BoxesOn | None = None,
    measurements: Sequence[Measurement] = (),
) -> PacsResults:
    """The study's current results as DICOM instances of the study (see the module).

    Raises:
        ValueError: the study is not DICOM, the record, key images or labels belong to another
            study, an instance would land in another study, or there is nothing to send.
    """
    from birdview.core._sr_sources import SourceImages, is_dicom

    ensure_same_study(record, volume)
    if not volume.sources or not volume.modality or not is_dicom(volume.sources[0].path):
        raise ValueError("Unable to send results to a PACS as the open study is not DICOM")
    if label_map is not None and label_map.study_identity not in ("", volume.identity):
        raise ValueError(
            f"Unable to send the labels {label_map.source!r} as they belong to another study"
        )
    sources = SourceImages(volume, anonymise=False)
    study_uid = str(sources.first().StudyInstanceUID)
    datasets: list[pydicom.Dataset] = []
    notes: list[str] = []
    parts: list[str] = []
    with tempfile.TemporaryDirectory(prefix="birdview-pacs-") as scratch:
        sr = _sr(record, volume, measurements, Path(scratch) / "sr.dcm", notes)
        if sr is not None:
            datasets.append(sr)
            parts.append("SR")
        if key_images:
            kos = _kos(volume, key_images, Path(scratch) / "kos.dcm", notes)
            if kos is not None:
                datasets.append(kos)
                parts.append(f"key image selection ({len(key_images)})")
        shots = list(key_images) or [KeyImage(*current)]
        sc_series = _series_uid(sources, "sc")  # one series for all the pictures
        captures = [
            secondary_capture(
                _annotated_pixels(record, volume, key, window, boxes_on, measurements, scratch),
                sources.first(),
                n,
                series_uid=sc_series,
                orientation=_patient_orientation(volume, key.plane),
                spacing_mm=_output_spacing(volume, key.plane),
                description=f"BirdView {'key image' if key_images else 'view'} {key.name()}",
            )
            for n, key in enumerate(shots, start=1)
        ]
        datasets += captures
        parts.append(_count(len(captures), "secondary capture"))
        if not key_images:
            notes.append("no key image is marked: the slice on screen was captured")
    if label_map is not None:
        seg = segmentation(label_map, volume, sources)
        datasets.append(seg)
        parts.append(f"SEG ({_count(len(seg.SegmentSequence), 'segment')})")
    if masks:
        seg = segmentation_of_masks(masks, volume, sources)  # refuses another study's masks
        datasets.append(seg)
        parts.append(f"SEG of masks ({_count(len(seg.SegmentSequence), 'mask')})")
    for dataset in datasets:
        _check_study(dataset, study_uid)
    logger.info("%d instances for the PACS from %s", len(datasets), volume.short_id)
    return PacsResults(tuple(datasets), " + ".join(parts), tuple(notes))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _check_study(dataset: pydicom.Dataset, study_uid: str) -> None:
    found = str(dataset.get("StudyInstanceUID", ""))
    if found != study_uid:
        raise ValueError(
            f"Unable to send the {dataset.get('Modality', 'DICOM')} instance as its study "
            f"({found or 'none'}) is not the open study ({study_uid})"
        )


def _series_uid(sources, kind: str) -> str:
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=[kind, str(sources.first().SOPInstanceUID), _now()])


def _now() -> str:
    import time

    return repr(time.time_ns())


def _sr(record, volume, measurements, path: Path, notes: list[str]) -> pydicom.Dataset | None:
    from birdview.core.exports_sr import export_dicom_sr

    if not (record.turns or record.user_boxes or measurements):
        notes.append("no SR: nothing was asked, drawn or measured")
        return None
    export_dicom_sr(record, volume, path, measurements=measurements)
    return pydicom.dcmread(path)


def _kos(volume, keys, path: Path, notes: list[str]) -> pydicom.Dataset | None:
    from birdview.core.key_images_export import export_key_object_selection

    notes += export_key_object_selection(volume, keys, path)
    return pydicom.dcmread(path) if path.exists() else None


def _annotated_pixels(record, volume, key, window, boxes_on, measurements, scratch) -> np.ndarray:
    """The PNG export of the slice (boxes, measurements, corner text) as an RGB array."""
    boxes, colours = boxes_on(key.plane, key.slice_index) if boxes_on else ((), ())
    path = Path(scratch) / f"{key.plane.value}-{key.slice_index}.png"
    export_png(
        record, volume, path, plane=key.plane, slice_index=key.slice_index, window=window,
        boxes=boxes, colours=list(colours) or None, zoom=_zoom(volume),
        measurements=measurements,
    )  # fmt: skip
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _zoom(volume: Volume) -> float:
    # As the key images' PNG export: small matrices are doubled so the text stays legible.
    return 2.0 if min(volume.shape[1:3]) < 300 else 1.0


def _output_spacing(volume: Volume, plane: Plane) -> tuple[float, float]:
    """(row, column) spacing in mm of a PNG pixel (`exports.png_size` stretches the image so
    both are the smaller pixel side over the zoom)."""
    side = min(geometry.pixel_size_mm(volume, plane)) / _zoom(volume)
    return side, side


def _patient_orientation(volume: Volume, plane: Plane) -> tuple[str, str] | None:
    """The patient directions of the image's rows and columns ("L", "P"), or None for an
    oblique plane (two letters), which Patient Orientation cannot say with one."""
    letters = geometry.orientation_letters(volume, plane)
    if letters is None or len(letters["right"]) != 1 or len(letters["bottom"]) != 1:
        return None
    dicom = {"S": "H", "I": "F"}  # DICOM says head and feet for superior and inferior
    return tuple(dicom.get(letters[edge], letters[edge]) for edge in ("right", "bottom"))


def secondary_capture(
    rgb: np.ndarray,
    reference: pydicom.Dataset,
    number: int,
    *,
    series_uid: str,
    orientation: tuple[str, str] | None,
    spacing_mm: tuple[float, float],
    description: str,
) -> pydicom.Dataset:
    """An RGB picture as a Secondary Capture of ``reference``'s patient and study."""
    import highdicom as hd

    patient = orientation is not None
    image = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=reference,
        pixel_array=np.ascontiguousarray(rgb, dtype=np.uint8),
        photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
        bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT if patient else None,
        series_instance_uid=series_uid,
        series_number=SC_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=number,
        manufacturer="BirdView",
        pixel_spacing=spacing_mm if patient else None,
        patient_orientation=orientation,
        transfer_syntax_uid=pydicom.uid.ExplicitVRLittleEndian,
    )
    image.SeriesDescription = "BirdView annotated images (AI-generated, not a diagnosis)"
    image.DerivationDescription = description
    image.BurnedInAnnotation = "YES"  # patient name, boxes and notices are in the pixels
    return image


# -- SEG ------------------------------------------------------------------------------------


def segmentation(label_map: LabelMap, volume: Volume, sources) -> pydicom.Dataset:
    """The label map as a binary SEG on the study's source images: one segment per label
    class (segment n = the n-th class), each frame sampled where its source image lies
    (`mask_exports.segmentation_of_masks`). Its algorithm is named after where the labels
    came from (a file or an engine); BirdView cannot know whether a person drew them.

    Raises:
        ValueError: the labels are not on the study's grid or empty, or the study is
            multi-frame.
    """
    if not label_map.classes:
        raise ValueError(f"Unable to send the labels {label_map.source!r} as they are empty")
    masks = masks_from_label_map(label_map, engine=label_map.source)
    return segmentation_of_masks(masks, volume, sources)
