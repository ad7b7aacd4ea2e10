"""Segmentation masks of a study written out: a DICOM SEG (highdicom) on the study's source
images, a NIfTI label map with the study's affine and a ``classes.json`` of its names, and the
DICOM SR with each mask's volume, axial long/short axis and mean/SD (`mask_sr`).

A mask here is plain: a `NamedMask` holds a boolean volume on the study's grid (canonical
order, as `Volume.voxels`), its name and colour, the engine that made it and whether the user
edited it, and the identity of the study it was made on. Every export refuses masks of
another study (study isolation) or off the study's grid, before anything is written.

The NIfTI is written the way dcm2niix writes a DICOM series — columns and slices as stored,
rows reversed — so it lies voxel for voxel on label maps made from dcm2niix's NIfTI (the
bundled TotalSegmentator map is one) and reopens in BirdView with its names.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom

from birdview.core.exports import write_export
from birdview.core.labels import RGB, LabelMap
from birdview.core.masks import MaskMeasures
from birdview.core.volume import Volume

__all__ = [
    "MaskExport",
    "NamedMask",
    "check_masks",
    "export_masks",
    "export_nifti",
    "export_seg",
    "masks_from_label_map",
    "masks_from_set",
    "nifti_affine",
    "segmentation_of_masks",
]

SEG_SERIES_NUMBER = 9905
ALGORITHM_TYPES = ("AUTOMATIC", "SEMIAUTOMATIC", "MANUAL")


@dataclass(frozen=True, eq=False)
class NamedMask:
    """One mask on a study's grid.

    Attributes:
        name: the structure ("liver"); SEG segment label and NIfTI class name.
        voxels: bool array (slices, rows, cols) on the study's grid.
        study_identity: `Volume.identity` of the study it was made on.
        colour: display colour (SEG's recommended display colour).
        engine: the segmentation engine that made it ("" when drawn by hand).
        edited: the user changed the engine's mask (brush, eraser).
        measures: its `masks.measure` on the study, when already known (saves seconds).
    """

    name: str
    voxels: np.ndarray
    study_identity: str
    colour: RGB = (255, 128, 0)
    engine: str = ""
    edited: bool = False
    measures: MaskMeasures | None = None  # already worked out (the Masks panel's), else None

    @property
    def algorithm_type(self) -> str:
        """DICOM's segment algorithm type: an engine's mask as it came is AUTOMATIC, one the
        user edited SEMIAUTOMATIC (made with the user's help), one drawn by hand MANUAL."""
        if not self.engine:
            return "MANUAL"
        return "SEMIAUTOMATIC" if self.edited else "AUTOMATIC"


def masks_from_label_map(label_map: LabelMap, *, engine: str = "") -> list[NamedMask]:
    """One mask per class of a label map (a segmentation engine's masks shown as labels)."""
    labels = np.asarray(label_map.volume.voxels)
    return [
        NamedMask(c.name, labels == c.value, label_map.study_identity, c.colour, engine)
        for c in label_map.classes
    ]


def masks_from_set(mask_set, *, engine: str = "", volume: Volume | None = None) -> list[NamedMask]:
    """The non-empty masks of a `mask_set.MaskSet`: one painted with the brush is drawn by
    the user (MANUAL); the others name ``engine`` (else how they were made: "SAM box",
    "propagated", ...). Given the study's ``volume``, each carries its cached measures."""
    found = []
    for entry in mask_set.entries:
        voxels = np.asarray(entry.data, dtype=bool)
        if not voxels.any():
            continue
        made_by = "" if entry.source == "brush" else (engine or entry.source)
        measures = entry.measures(volume) if volume is not None else None
        found.append(
            NamedMask(
                entry.name, voxels, mask_set.study or "", entry.colour, made_by, False, measures
            )
        )
    return found


def check_masks(masks: Sequence[NamedMask], volume: Volume, what: str = "masks") -> None:
    """Refuse masks that are not this study's, off its grid, unnamed, twice named or empty.

    Raises:
        ValueError: naming the mask and what is wrong.
    """
    if not masks:
        raise ValueError(f"Unable to export {what}: there is no mask")
    seen: set[str] = set()
    for mask in masks:
        if mask.study_identity != volume.identity:
            raise ValueError(
                f"Unable to export the mask {mask.name!r} as it belongs to another study"
            )
        if np.shape(mask.voxels) != volume.shape:
            raise ValueError(
                f"Unable to export the mask {mask.name!r}: its shape "
                f"{np.shape(mask.voxels)!r} is not the study's grid {volume.shape!r}"
            )
        if not mask.name.strip() or mask.name in seen:
            raise ValueError(
                f"Unable to export the masks: the name {mask.name!r} is empty or twice"
            )
        seen.add(mask.name)
        if not np.any(mask.voxels):
            raise ValueError(f"Unable to export the mask {mask.name!r} as it is empty")


# -- DICOM SEG ------------------------------------------------------------------------------


def segmentation_of_masks(masks: Sequence[NamedMask], volume: Volume, sources) -> pydicom.Dataset:
    """The masks as one binary SEG on the study's source images (segment n = masks[n - 1];
    masks may overlap), each frame sampled where its source image lies.

    Raises:
        ValueError: the study is multi-frame or not DICOM, or a mask is refused (`check_masks`).
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    check_masks(masks, volume)
    if any(s.frame is not None for s in volume.sources):
        raise ValueError("Unable to export masks as a SEG of a multi-frame study")
    headers = [sources.header(s.path) for s in volume.sources]
    frames = np.stack([_on_image(h, masks, volume) for h in headers])  # (image, r, c, segment)
    descriptions = [_segment(n, mask, hd, codes) for n, mask in enumerate(masks, start=1)]
    seg = hd.seg.Segmentation(
        source_images=headers,
        pixel_array=frames.astype(bool),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="BirdView",
        manufacturer_model_name="BirdView",
        software_versions="1",
        device_serial_number="0",
        series_description="BirdView masks (AI-generated, not a diagnosis)",
    )
    buffer = io.BytesIO()  # a round trip gives it file meta like any file read
    seg.save_as(buffer, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


def _on_image(header: pydicom.Dataset, masks: Sequence[NamedMask], volume: Volume) -> np.ndarray:
    """Each mask at every pixel of a source image, from the voxel whose centre the pixel is
    (False off the study's grid): (rows, cols, masks). Pixel → voxel index is affine, so it
    is worked out from three points, not per pixel."""
    rows, cols = int(header.Rows), int(header.Columns)
    origin = np.asarray([float(v) for v in header.ImagePositionPatient])
    iop = np.asarray([float(v) for v in header.ImageOrientationPatient])
    row_mm, col_mm = (float(v) for v in header.PixelSpacing)
    base, along_col, along_row = volume.lps_to_index(
        np.stack([origin, origin + col_mm * iop[:3], origin + row_mm * iop[3:]])
    )
    r, c = np.mgrid[0:rows, 0:cols]
    ijk = base + c[..., None] * (along_col - base) + r[..., None] * (along_row - base)
    ijk = np.rint(ijk.reshape(-1, 3)).astype(int)
    k, j, i = volume.shape
    inside = np.all((ijk >= 0) & (ijk < (i, j, k)), axis=1)
    out = np.zeros((rows * cols, len(masks)), dtype=bool)
    for n, mask in enumerate(masks):
        voxels = np.asarray(mask.voxels, dtype=bool)
        out[inside, n] = voxels[ijk[inside, 2], ijk[inside, 1], ijk[inside, 0]]
    return out.reshape(rows, cols, len(masks))


def _segment(n: int, mask: NamedMask, hd, codes):
    kind = getattr(hd.seg.SegmentAlgorithmTypeValues, mask.algorithm_type)
    algorithm = None
    if mask.engine:
        algorithm = hd.AlgorithmIdentificationSequence(
            name=mask.engine[:64], version="1", family=codes.cid7162.ArtificialIntelligence
        )
    return hd.seg.SegmentDescription(
        segment_number=n,
        segment_label=mask.name[:64],
        segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=codes.SCT.Tissue,
        algorithm_type=kind,
        algorithm_identification=algorithm,
        display_color=hd.color.CIELabColor.from_rgb(*mask.colour),
    )


def export_seg(
    masks: Sequence[NamedMask], volume: Volume, path: str | os.PathLike, *, anonymise=False
):
    """Write the masks as a DICOM SEG file; returns the SEG dataset.

    Raises:
        ValueError: see `segmentation_of_masks`; OSError: the file could not be written.
    """
    seg = _seg_dataset(masks, volume, anonymise)
    _write_seg(seg, path)
    return seg


def _seg_dataset(masks: Sequence[NamedMask], volume: Volume, anonymise: bool) -> pydicom.Dataset:
    from birdview.core._sr_sources import SourceImages, anonymise_header, is_dicom

    if not volume.sources or not is_dicom(volume.sources[0].path):
        raise ValueError("Unable to export masks as a DICOM SEG as the study is not DICOM")
    seg = segmentation_of_masks(masks, volume, SourceImages(volume, anonymise))
    if anonymise:  # as the SR anonymises its own header: both name the patient the same
        anonymise_header(seg)
    return seg


def _write_seg(seg: pydicom.Dataset, path: str | os.PathLike) -> None:
    buffer = io.BytesIO()
    seg.save_as(buffer, enforce_file_format=True)
    write_export(path, buffer.getvalue())


# -- NIfTI ----------------------------------------------------------------------------------


def nifti_affine(volume: Volume) -> np.ndarray:
    """The RAS affine of the NIfTI `export_nifti` writes: array axes (column, reversed row,
    slice) of the canonical volume."""
    axes = np.asarray(volume.direction, dtype=float) * np.asarray(volume.spacing_mm, dtype=float)
    lps = np.eye(4)
    lps[:3, :3] = axes
    lps[:3, 3] = volume.origin_lps_mm
    rows = volume.shape[1]
    flip = np.eye(4)  # index j' = rows - 1 - j
    flip[1, 1], flip[1, 3] = -1.0, rows - 1
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps @ flip


def export_nifti(
    masks: Sequence[NamedMask], volume: Volume, path: str | os.PathLike
) -> tuple[str, str]:
    """Write the masks as one NIfTI label map (value n = masks[n - 1]; where masks overlap the
    later one wins) and their names in ``classes.json`` beside it; returns both paths.

    BirdView and most tools look for ``classes.json`` in the label map's folder, so that is
    the name. The names go in a section that applies to this file only (with the study
    identity), added to a sectioned ``classes.json`` already there, never replacing the
    names of other files.

    Raises:
        ValueError: a mask is refused (`check_masks`), the study has no patient geometry, or
            a ``classes.json`` there is not sectioned (it would name this file's values too).
        OSError: a file could not be written.
    """
    import nibabel as nib

    check_masks(masks, volume)
    if not volume.has_geometry:
        raise ValueError("Unable to export masks as NIfTI as the study has no patient geometry")
    path = Path(path)
    classes = path.parent / "classes.json"
    names = _classes_with(classes, path.name, masks, volume)
    dtype = np.uint8 if len(masks) < 256 else np.uint16
    labels = np.zeros(volume.shape, dtype)
    for n, mask in enumerate(masks, start=1):
        labels[np.asarray(mask.voxels, dtype=bool)] = n
    data = np.ascontiguousarray(np.transpose(labels, (2, 1, 0))[:, ::-1, :])
    image = nib.Nifti1Image(data, nifti_affine(volume))
    image.header.set_xyzt_units("mm")
    image.set_qform(image.affine, code=1)
    image.set_sform(image.affine, code=1)
    write_export(path, _gz(image) if path.name.endswith(".gz") else image.to_bytes())
    write_export(classes, json.dumps(names, indent=1) + "\n")
    return os.fspath(path), os.fspath(classes)


def _classes_with(classes: Path, file_name: str, masks, volume: Volume) -> dict:
    """The classes.json content with this file's section added (see `export_nifti`)."""
    data: dict = {}
    if classes.exists():
        try:
            data = json.loads(classes.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"Unable to add names to {os.fspath(classes)!r} as {exc}") from exc
        sectioned = (
            isinstance(data, dict)
            and "labels" not in data
            and all("applies_to" in v for v in data.values() if isinstance(v, dict))
            and not (data and all(str(k).isdigit() for k in data))
        )
        if not sectioned:
            raise ValueError(
                f"Unable to export masks as NIfTI in {os.fspath(classes.parent)!r}: its "
                "classes.json names other label maps; choose another folder"
            )
    data[f"birdview {file_name}"] = {
        "applies_to": [file_name],
        "labels": {str(n): m.name for n, m in enumerate(masks, start=1)},
        "colours": {str(n): list(m.colour) for n, m in enumerate(masks, start=1)},
        "made_by": {m.name: m.engine or "drawn by the user" for m in masks},
        "study_identity": volume.identity,
    }
    return data


def _gz(image) -> bytes:
    import gzip

    return gzip.compress(image.to_bytes(), mtime=0)


# -- all three ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaskExport:
    """The files `export_masks` wrote and what the SR left out."""

    sr: str
    seg: str
    nifti: str
    classes: str
    skipped: tuple[str, ...]


def export_masks(
    record,
    volume: Volume,
    sr_path: str | os.PathLike,
    masks: Sequence[NamedMask],
    *,
    measurements: Sequence = (),
    anonymise: bool = False,
    slab=None,
) -> MaskExport:
    """The DICOM SR (conversation, measurements and one TID 1411 group per mask referencing
    its SEG segment), the SEG beside it (``<stem>-seg.dcm``) and the NIfTI label map
    (``<stem>-masks.nii.gz`` and ``classes.json``).

    Everything is checked before the first file is written.

    Raises:
        ValueError: another study, masks refused, the study not DICOM.
        OSError: a file could not be written.
    """
    from birdview.core.exports_sr import export_dicom_sr
    from birdview.core.session_store import ensure_same_study

    ensure_same_study(record, volume)
    check_masks(masks, volume)
    sr_path = Path(sr_path)
    stem = sr_path.name[: -len(sr_path.suffix)] if sr_path.suffix else sr_path.name
    seg_path = sr_path.with_name(f"{stem}-seg.dcm")
    nifti_path = sr_path.with_name(f"{stem}-masks.nii.gz")
    seg = _seg_dataset(masks, volume, anonymise)
    _classes_with(nifti_path.parent / "classes.json", nifti_path.name, masks, volume)
    sr = export_dicom_sr(
        record,
        volume,
        sr_path,
        measurements=measurements,
        masks=(tuple(masks), seg),
        anonymise=anonymise,
        slab=slab,  # ROIs measured on the thick slab shown: see measure_sr
    )
    _write_seg(seg, seg_path)
    nifti, classes = export_nifti(masks, volume, nifti_path)
    return MaskExport(os.fspath(sr_path), os.fspath(seg_path), nifti, classes, sr.skipped)
