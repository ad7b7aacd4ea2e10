"""3D sources: a volume and its label map, sliced in three planes, SA-Med2D style.

Both are read through `birdview.core.io` and brought to the viewer's canonical order
(`to_canonical`), so a slice is exactly what the viewer shows: radiological convention,
image left = patient right in axial and coronal views. Each slice is rendered the way the app
renders what it sends to the model (`render_for_model`: the volume's 0.5–99.5 % range → 0–255,
grey copied to RGB), and resized to square pixels when the voxels are not square in that
plane (coronal and sagittal slices of thick-slice volumes), the image bilinearly, the labels
by nearest neighbour so that boxes follow the labels exactly as resized.

File names follow SA-Med2D: ``<modality>_00--<dataset>--<case>--<axis>_<slice:04d>.png`` with
axis x (sagittal: the slice is perpendicular to the patient's x axis), y (coronal) or z
(axial), and the slice number counted in the canonical volume (x from patient right to left,
y from anterior to posterior, z from inferior to superior).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from birdview.core.geometry import Plane, extract_slice, pixel_size_mm, slice_count, to_canonical
from birdview.core.model_input import render_for_model, volume_intensity_range
from birdview.core.volume import Volume, short_id
from trainer._json_stream import read_json
from trainer.data.names import file_prefix, modality_from_dicom, modality_from_words
from trainer.data.sources import (
    LabelMask,
    SourceImage,
    SourceReport,
    SourceSpec,
    clean_part,
)

__all__ = [
    "AXIS",
    "LabelledVolume",
    "dicomseg_images",
    "nifti_images",
    "nifti_pair_images",
    "nifti_pairs",
    "volume_slices",
]

logger = logging.getLogger(__name__)

AXIS = {Plane.SAGITTAL: "x", Plane.CORONAL: "y", Plane.AXIAL: "z"}
# Slices narrower than this (after resizing to square pixels) show too little to ask about.
MIN_SIDE_PX = 16
_GRID_TOLERANCE = 1e-3  # relative, for spacing, origin and direction of image vs labels


@dataclass(frozen=True)
class LabelledVolume:
    """A volume, its label map on the same grid, and the names of the label values."""

    dataset: str
    case: str
    patient: str
    modality: str
    image: Volume
    labels: Volume
    names: dict[int, str]


# -- slicing --------------------------------------------------------------------------------


def volume_slices(
    volume: LabelledVolume, planes: Sequence[str], step: int, report: SourceReport
) -> Iterator[SourceImage]:
    """Every ``step``-th slice in each plane; all of them, labelled or not (the builder keeps
    unlabelled ones only as negatives). Rendering waits until `SourceImage.render` is called.
    """
    image, labels = to_canonical(volume.image), to_canonical(volume.labels)
    label_array = np.asarray(labels.voxels)
    values = {int(v) for v in np.unique(label_array)} - {0}
    unnamed = sorted(values - set(volume.names))
    if unnamed:
        report.notes.append(f"{volume.case}: label values without a name, left out: {unnamed}")
    named = {v: volume.names[v] for v in sorted(values - set(unnamed))}
    intensity = volume_intensity_range(image)
    prefix = file_prefix(volume.modality)
    for plane in (Plane(p) for p in planes):
        size = _square_size(image, plane)
        if min(size) < MIN_SIDE_PX:
            report.skip(
                f"{plane.value} slices narrower than {MIN_SIDE_PX} px", slice_count(image, plane)
            )
            continue
        for index in range(0, slice_count(image, plane), step):
            label_slice = _resize_nearest(extract_slice(labels, plane, index), size)
            present = [v for v in np.unique(label_slice) if int(v) in named]
            yield SourceImage(
                name=f"{prefix}--{volume.dataset}--{volume.case}--{AXIS[plane]}_{index:04d}.png",
                dataset=volume.dataset,
                case=volume.case,
                patient=volume.patient,
                modality=volume.modality,
                plane=plane.value,
                body_part=None,
                masks=tuple(LabelMask(named[int(v)], 0, label_slice == v) for v in present),
                # A label map annotates every class wherever it is, so a class of this volume
                # with no pixel in the slice is really absent from it.
                absent=tuple(sorted({named[v] for v in named} - {named[int(v)] for v in present})),
                render=partial(_render, image, plane, index, intensity, size),
            )


def _square_size(volume: Volume, plane: Plane) -> tuple[int, int]:
    """(width, height) of a slice resampled to square pixels of the finer spacing."""
    rows, cols = extract_slice(volume, plane, 0).shape[:2]
    width_mm, height_mm = pixel_size_mm(volume, plane)
    finest = min(width_mm, height_mm)
    return (max(1, round(cols * width_mm / finest)), max(1, round(rows * height_mm / finest)))


def _resize_nearest(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    rows, cols = array.shape[:2]
    if (cols, rows) == (width, height):
        return np.asarray(array)
    row_index = np.minimum(((np.arange(height) + 0.5) * rows / height).astype(int), rows - 1)
    col_index = np.minimum(((np.arange(width) + 0.5) * cols / width).astype(int), cols - 1)
    return np.asarray(array)[row_index[:, None], col_index[None, :]]


def _render(
    volume: Volume, plane: Plane, index: int, intensity: tuple[float, float], size: tuple[int, int]
) -> np.ndarray:
    from PIL import Image

    rgb = render_for_model(volume, plane, index, intensity_range=intensity)
    if (rgb.shape[1], rgb.shape[0]) == size:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))


def same_grid(a: Volume, b: Volume) -> bool:
    """Whether two volumes share shape, spacing, origin and direction."""
    if a.shape != b.shape:
        return False
    scale = max(max(a.spacing_mm), 1.0)
    return (
        np.allclose(a.spacing_mm, b.spacing_mm, rtol=_GRID_TOLERANCE)
        and np.allclose(a.origin_lps_mm, b.origin_lps_mm, atol=_GRID_TOLERANCE * scale * 10)
        and np.allclose(a.direction, b.direction, atol=_GRID_TOLERANCE)
    )


def _modality(volume: Volume, spec: SourceSpec, *names: str) -> str | None:
    """The user's choice, else the reader's modality, else a word in the file or folder."""
    if spec.options.get("modality"):
        return spec.options["modality"]
    from_header = modality_from_dicom(volume.modality)
    if from_header:
        return from_header
    for name in names:
        found = modality_from_words(name)
        if found:
            return found
    return None


# -- nifti ----------------------------------------------------------------------------------


def nifti_images(
    spec: SourceSpec, planes: Sequence[str], step: int, report: SourceReport
) -> Iterator[SourceImage]:
    """Slices of every (image, label map) pair found under the source folder."""
    for pair in _nifti_pairs(spec, report):
        yield from nifti_pair_images(spec, pair, planes, step, report)


def nifti_pairs(spec: SourceSpec, report: SourceReport) -> list[tuple[Path, Path, dict]]:
    """(image, label map, value → name) of every usable pair, in build order: the units a
    parallel build hands to its worker processes, one volume each."""
    return _nifti_pairs(spec, report)


def nifti_pair_images(
    spec: SourceSpec,
    pair: tuple[Path, Path, dict],
    planes: Sequence[str],
    step: int,
    report: SourceReport,
) -> Iterator[SourceImage]:
    """Slices of one (image, label map, names) pair of `nifti_pairs`."""
    volume = _read_nifti_pair(spec, *pair, report)
    if volume is not None:
        yield from volume_slices(volume, planes, step, report)


def _read_nifti_pair(
    spec: SourceSpec,
    image_path: Path,
    label_path: Path,
    names: dict[int, str],
    report: SourceReport,
) -> LabelledVolume | None:
    from birdview.core.io import load, scan

    image = load(scan(image_path).entries[0])
    labels = load(scan(label_path).entries[0])
    if not same_grid(to_canonical(image), to_canonical(labels)):
        report.skip(f"{label_path.name}: not on the grid of {image_path.name}")
        return None
    case = clean_part(_stem(image_path))
    modality = _modality(image, spec, image_path.name, spec.path.resolve().name)
    if modality is None:
        report.skip(f"{image_path.name}: modality unknown (give ?modality=)")
        return None
    return LabelledVolume(spec.dataset, case, case, modality, image, labels, names)


def _stem(path: Path) -> str:
    name = re.sub(r"\.nii(\.gz)?$", "", path.name)
    return re.sub(r"_0000$", "", name)  # nnU-Net's channel suffix


def _nifti_pairs(spec: SourceSpec, report: SourceReport) -> list[tuple[Path, Path, dict]]:
    """(image, label map, value → name) for each usable pair, sorted by image path."""
    root = spec.path
    pairs = _folder_pairs(root) or _grid_pairs(root, report)
    usable = []
    for image_path, label_path in pairs:
        names = class_names(root, label_path.name, spec.options.get("labels"))
        if names is None:
            report.skip(f"{label_path.name}: no class names (give ?labels=1:name,...)")
            continue
        usable.append((image_path, label_path, names))
    return sorted(usable, key=lambda pair: (pair[0], pair[1]))


def _folder_pairs(root: Path) -> list[tuple[Path, Path]]:
    """nnU-Net / SAM-Med3D layout: imagesTr/X.nii.gz with labelsTr/X.nii.gz (also Ts)."""
    pairs = []
    for images in sorted(root.rglob("images*")):
        labels = images.parent / images.name.replace("images", "labels", 1)
        if not (images.is_dir() and labels.is_dir()):
            continue
        by_stem = {_stem(p): p for p in labels.iterdir() if p.name.endswith((".nii", ".nii.gz"))}
        for image in sorted(images.iterdir()):
            if image.name.endswith((".nii", ".nii.gz")) and _stem(image) in by_stem:
                pairs.append((image, by_stem[_stem(image)]))
    return pairs


def _grid_pairs(root: Path, report: SourceReport) -> list[tuple[Path, Path]]:
    """Label maps (as a class map names them) paired with the one image on the same grid."""
    files = sorted(p for p in root.rglob("*") if p.name.endswith((".nii", ".nii.gz")))
    label_names = _files_with_class_maps(root)
    labels = [p for p in files if p.name in label_names]
    images = [p for p in files if p.name not in label_names]
    headers = {p: _header(p) for p in files}
    pairs = []
    for label in labels:
        matches = [i for i in images if headers[i] == headers[label]]
        if len(matches) != 1:
            report.skip(f"{label.name}: {len(matches)} NIfTI images on its grid (needs 1)")
            continue
        pairs.append((matches[0], label))
    return pairs


def _header(path: Path) -> tuple:
    """Size, spacing, origin and direction, rounded: equal tuples mean the same grid."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    return (
        tuple(reader.GetSize()),
        tuple(round(v, 3) for v in reader.GetSpacing()),
        tuple(round(v, 2) for v in reader.GetOrigin()),
        tuple(round(v, 4) for v in reader.GetDirection()),
    )


def _files_with_class_maps(root: Path) -> set[str]:
    """Label map file names listed by classes.json sections ("applies_to")."""
    found: set[str] = set()
    for section in _class_sections(root):
        found.update(str(name) for name in section.get("applies_to", []))
    return found


def _class_sections(root: Path) -> list[dict]:
    path = root / "classes.json"
    if not path.is_file():
        return []
    data = read_json(path)
    return [v for v in data.values() if isinstance(v, dict)] if isinstance(data, dict) else []


def class_names(root: Path, label_file: str, option: str | None) -> dict[int, str] | None:
    """Value → name of a label map: from ``?labels=`` ("1:edema,2:tumour" or a JSON file),
    else a classes.json section that applies to the file, else an nnU-Net dataset.json;
    None when nothing names the values. Value 0 is background and never named."""
    if option:
        return _parse_labels_option(option)
    for section in _class_sections(root):
        if label_file in section.get("applies_to", []) and isinstance(section.get("labels"), dict):
            return _value_names(section["labels"])
    dataset = root / "dataset.json"
    if dataset.is_file():
        data = read_json(dataset)
        labels = data.get("labels") if isinstance(data, dict) else None
        if isinstance(labels, dict):
            return _value_names(labels)
    return None


def _parse_labels_option(option: str) -> dict[int, str]:
    if Path(option).is_file():
        mapping = read_json(option)
        if not isinstance(mapping, dict):
            raise ValueError(f"Unable to read labels from '{option}' as it is not a JSON object")
        return _value_names(mapping)
    names = {}
    for piece in option.split(","):
        value, sep, name = piece.partition(":")
        if not sep or not value.strip().isdigit() or not name.strip():
            raise ValueError(
                f"Unable to read labels={option!r} as {piece!r} is not VALUE:NAME (e.g. 1:edema)"
            )
        names[int(value)] = name.strip()
    return names


def _value_names(mapping: dict) -> dict[int, str]:
    """{"1": "liver"} (value → name) or nnU-Net v2's {"liver": 1} (name → value)."""
    names = {}
    for key, value in mapping.items():
        if str(key).isdigit():
            names[int(key)] = str(value)
        elif isinstance(value, int):
            names[value] = str(key)
    names.pop(0, None)
    return {v: n for v, n in names.items() if n and n.lower() != "background"}


# -- dicom + seg ----------------------------------------------------------------------------


def dicomseg_images(
    spec: SourceSpec, planes: Sequence[str], step: int, report: SourceReport
) -> Iterator[SourceImage]:
    """Slices of every DICOM series that a DICOM SEG in the folder segments."""
    from birdview.core.io import load, scan

    catalog = scan(spec.path)
    segs = [e for e in catalog.entries if e.modality == "SEG"]
    series = [e for e in catalog.entries if e.modality != "SEG"]
    if not segs:
        from trainer.data.layouts import looked_at

        raise ValueError(
            f"Unable to read '{spec.path}' as DICOM + SEG: no SEG object found; "
            f"{looked_at(spec.kind, spec.path)}"
        )
    volumes = [load(entry) for entry in series]
    for entry in segs:
        for seg_path in entry.paths:
            volume = _seg_volume(Path(seg_path), volumes, spec, report)
            if volume is not None:
                yield from volume_slices(volume, planes, step, report)


def _seg_volume(
    seg_path: Path, volumes: list[Volume], spec: SourceSpec, report: SourceReport
) -> LabelledVolume | None:
    import highdicom as hd

    try:
        seg = hd.seg.segread(seg_path)
        names = {n: _segment_name(seg, n) for n in seg.segment_numbers}
        # Overlapping segments are rare in label maps; where they overlap, the last one wins.
        labelled = seg.get_volume(combine_segments=True, skip_overlap_checks=True)
    except (ValueError, RuntimeError, AttributeError) as exc:
        report.skip(f"{seg_path.name}: not readable as a volume ({exc})")
        return None
    for image in volumes:
        label_array = _on_grid(labelled.array, labelled.affine, image)
        if label_array is None:
            continue
        modality = _modality(image, spec, spec.path.resolve().name)
        if modality is None:
            report.skip(f"{seg_path.name}: modality unknown (give ?modality=)")
            return None
        case = _series_case(image, spec)
        patient = image.metadata.get("patient_id") or ""
        group = f"patient_{short_id(patient)}" if patient else case
        labels = image.with_changes(voxels=label_array, modality="SEG", window=None)
        return LabelledVolume(spec.dataset, case, group, modality, image, labels, names)
    report.skip(f"{seg_path.name}: no series in the folder has its frames on its pixel grid")
    return None


def _segment_name(seg, number: int) -> str:
    description = seg.get_segment_description(number)
    label = str(getattr(description, "segment_label", "") or "").strip()
    return label or str(description.segmented_property_type.meaning)


def _series_case(image: Volume, spec: SourceSpec) -> str:
    """A name without patient data: a hash of the series UID, or of the series' folder
    relative to the source (the UID may be empty, as in the TotalSegmentator example)."""
    if image.series_uid:
        return f"series_{short_id(image.series_uid)}"
    folder = Path(image.sources[0].path).parent if image.sources else spec.path
    relative = folder.resolve().relative_to(spec.path.resolve()).as_posix()
    return f"series_{short_id(relative)}"


def _on_grid(array: np.ndarray, affine: np.ndarray, image: Volume) -> np.ndarray | None:
    """The SEG's label array placed on ``image``'s voxel grid (k, j, i), or None when its
    frames are not slices of that grid (rows along j, columns along i, whole slices)."""
    k_size, rows, cols = image.shape
    if array.shape[1:] != (rows, cols):
        return None
    steps = image.lps_to_index(affine[:3, :3].T + affine[:3, 3]) - image.lps_to_index(affine[:3, 3])
    start = image.lps_to_index(affine[:3, 3])
    if not (
        np.allclose(steps[1], (0, 1, 0), atol=1e-3) and np.allclose(steps[2], (1, 0, 0), atol=1e-3)
    ):
        return None
    if not np.allclose(start[:2], 0, atol=1e-2) or not np.allclose(steps[0][:2], 0, atol=1e-3):
        return None
    k_step, k_start = steps[0][2], start[2]
    ks = k_start + k_step * np.arange(array.shape[0])
    if not np.allclose(ks, np.rint(ks), atol=1e-2) or ks.min() < -0.5 or ks.max() > k_size - 0.5:
        return None
    placed = np.zeros(image.shape, dtype=np.uint16)
    placed[np.rint(ks).astype(int)] = array
    return placed
