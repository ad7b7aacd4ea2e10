"""`LabelMap`: a segmentation on the voxel grid of the open study, whatever it came from.

A label map is an integer array (uint8 or uint16) on exactly the study's grid — same shape,
same (canonical) axis order — plus the name and colour of each value. Readers (NIfTI label
maps, DICOM SEG, RTSTRUCT; `birdview.core.labels_io`) and segmentation engines all end here,
through `label_map_from_array` (an array already on the study's grid) or `match_volume` (a
label volume with its own geometry, accepted only when it lies on the same voxels).

Nothing is resampled: a label volume on another grid is refused, because interpolating labels
silently would show structures where the file does not put them.
"""

from __future__ import annotations

import colorsys
import re
from dataclasses import dataclass, field

import numpy as np

from birdview.core import geometry
from birdview.core.box import Box
from birdview.core.geometry import Plane
from birdview.core.volume import Volume

__all__ = [
    "Agreement",
    "LabelClass",
    "LabelMap",
    "LabelMismatchError",
    "agreement",
    "box_iou",
    "default_colour",
    "label_box",
    "label_map_from_array",
    "match_volume",
    "names_match",
]

# Two grids are the same when their voxel centres agree to this (mm) and their axes to this
# (cosine): well below any voxel, well above float32 rounding of NIfTI headers.
ORIGIN_TOLERANCE_MM = 0.05
SPACING_TOLERANCE_MM = 1e-3
DIRECTION_TOLERANCE = 1e-4

RGB = tuple[int, int, int]


class LabelMismatchError(ValueError):
    """A label map that does not belong to the open study (another grid or frame)."""


@dataclass(frozen=True)
class LabelClass:
    """One structure of a label map: its voxel value, name and display colour."""

    value: int
    name: str
    colour: RGB

    def __post_init__(self) -> None:
        if int(self.value) <= 0:
            raise ValueError(f"Unable to name label value {self.value!r} as 0 is background")
        object.__setattr__(self, "value", int(self.value))
        object.__setattr__(self, "colour", tuple(int(c) & 255 for c in self.colour))


@dataclass(frozen=True, eq=False)
class LabelMap:
    """Labels on the study's grid.

    Attributes:
        volume: a `Volume` of integer labels with the study's geometry (canonical order).
        classes: the named values, in value order; only values present in the voxels.
        source: where it came from, for people ("example_seg.nii.gz", "engine: ...").
        kind: "nifti", "seg", "rtstruct" or "array".
        study_identity: `Volume.identity` of the study it was matched to.
        path: the file it was read from ("" when made from an array).
    """

    volume: Volume
    classes: tuple[LabelClass, ...]
    source: str
    kind: str = "array"
    study_identity: str = ""
    path: str = ""
    notes: tuple[str, ...] = field(default=())

    def slice(self, plane: Plane, index: int) -> np.ndarray:
        """The labels shown on slice ``index`` of ``plane``, as `geometry.extract_slice`."""
        return geometry.extract_slice(self.volume, plane, index)

    def by_value(self, value: int) -> LabelClass | None:
        return next((c for c in self.classes if c.value == int(value)), None)

    def find(self, name: str) -> LabelClass | None:
        """The class whose name matches ``name`` (see `names_match`), or None."""
        return next((c for c in self.classes if names_match(c.name, name)), None)


def default_colour(value: int) -> RGB:
    """A distinct, bright colour per value (golden-ratio hues), the same in every session."""
    hue = (int(value) * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.7, 1.0)
    return (round(r * 255), round(g * 255), round(b * 255))


def names_match(a: str, b: str) -> bool:
    """Whether two structure names mean the same: case, underscores and word order aside
    ("kidney_right" = "Right kidney")."""
    return _words(a) == _words(b) and bool(_words(a))


def _words(name: str) -> tuple[str, ...]:
    return tuple(sorted(w for w in re.split(r"[^a-z0-9]+", str(name).lower()) if w))


# -- building -------------------------------------------------------------------------------


def label_map_from_array(
    labels: np.ndarray,
    study: Volume,
    names: dict[int, str],
    *,
    colours: dict[int, RGB] | None = None,
    source: str = "labels",
    kind: str = "array",
    path: str = "",
    notes: tuple[str, ...] = (),
) -> LabelMap:
    """A label map from an integer array already on ``study``'s grid, shape (k, j, i).

    Values without a name are kept and called "label <n>".

    Raises:
        LabelMismatchError: the array's shape is not the study's.
        ValueError: the values are not non-negative integers below 65536.
    """
    labels = np.asarray(labels)
    if labels.shape != study.shape:
        raise LabelMismatchError(
            f"Unable to overlay {source!r} as its labels have shape {labels.shape!r} and the "
            f"study {study.shape!r}"
        )
    labels = _as_label_dtype(labels, source)
    present = [int(v) for v in np.unique(labels) if v]
    colours = colours or {}
    classes = tuple(
        LabelClass(v, names.get(v) or f"label {v}", colours.get(v) or default_colour(v))
        for v in present
    )
    volume = study.with_changes(  # the study's geometry; nothing else of it
        voxels=labels, modality="SEG", window=None, metadata={}, warnings=(), sources=()
    )
    return LabelMap(volume, classes, source, kind, study.identity, path, tuple(notes))


def _as_label_dtype(labels: np.ndarray, source: str) -> np.ndarray:
    if labels.dtype.kind == "b":
        return labels.astype(np.uint8)
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
            raise ValueError(f"Unable to overlay {source!r} as its values are not integers")
    elif labels.dtype.kind not in "iu":
        raise ValueError(f"Unable to overlay {source!r} as its values are {labels.dtype}")
    low, high = (labels.min(), labels.max()) if labels.size else (0, 0)
    if low < 0 or high > 65535:
        raise ValueError(
            f"Unable to overlay {source!r} as its values span {low}..{high}, not 0..65535"
        )
    return labels.astype(np.uint8 if high < 256 else np.uint16, copy=False)


def match_volume(
    labels: Volume, study: Volume, names: dict[int, str], **options: object
) -> LabelMap:
    """A label map from a label volume read with its own geometry, when it lies on the
    study's voxels exactly (axes may be permuted or flipped; both are put in canonical order).

    Raises:
        LabelMismatchError: another shape, spacing, origin or orientation, naming what differs.
    """
    source = str(options.get("source", "labels"))
    canonical = geometry.to_canonical(labels)
    target = geometry.to_canonical(study)
    problem = grid_difference(canonical, target)
    if problem:
        raise LabelMismatchError(
            f"Unable to overlay {source!r} on this study as {problem}; a label map must lie on "
            "the study's own voxels (nothing is resampled)"
        )
    return label_map_from_array(np.asarray(canonical.voxels), target, names, **options)


def grid_difference(a: Volume, b: Volume) -> str:
    """What makes two canonical grids differ, for people; "" when they are the same."""
    if not a.has_geometry or not b.has_geometry:
        return "one of them has no patient geometry" if a.shape != b.shape else ""
    if a.shape != b.shape:
        return f"its grid has {_size(a)} voxels and the study's {_size(b)}"
    spacing = np.abs(np.subtract(a.spacing_mm, b.spacing_mm))
    if spacing.max() > SPACING_TOLERANCE_MM:
        return f"its voxels measure {_mm(a.spacing_mm)} mm and the study's {_mm(b.spacing_mm)} mm"
    if np.abs(a.direction - b.direction).max() > DIRECTION_TOLERANCE:
        return "its axes are oriented differently from the study's"
    offset = float(np.linalg.norm(np.subtract(a.origin_lps_mm, b.origin_lps_mm)))
    if offset > ORIGIN_TOLERANCE_MM:
        return f"its grid is shifted by {offset:.2f} mm from the study's"
    return ""


def _size(volume: Volume) -> str:
    k, j, i = volume.shape
    return f"{i}×{j}×{k}"


def _mm(values: tuple[float, ...]) -> str:
    return "×".join(f"{v:.3g}" for v in values)


# -- teaching: the model's box against the label's ------------------------------------------


def label_box(label_map: LabelMap, value: int, plane: Plane, index: int) -> Box | None:
    """The bounding box (pixel edges, as `Box`) of label ``value`` on one slice, or None when
    the label is absent there."""
    rows, cols = np.nonzero(label_map.slice(plane, index) == int(value))
    if rows.size == 0:
        return None
    found = label_map.by_value(value)
    return Box(
        plane,
        int(index),
        float(cols.min()),
        float(rows.min()),
        float(cols.max() + 1),
        float(rows.max() + 1),
        label=found.name if found else "",
    )


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes on the same slice (0 on different slices)."""
    if a.plane is not b.plane or a.slice_index != b.slice_index:
        return 0.0
    width = min(a.x2_px, b.x2_px) - max(a.x1_px, b.x1_px)
    height = min(a.y2_px, b.y2_px) - max(a.y1_px, b.y1_px)
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    area_a = (a.x2_px - a.x1_px) * (a.y2_px - a.y1_px)
    area_b = (b.x2_px - b.x1_px) * (b.y2_px - b.y1_px)
    return float(inter / (area_a + area_b - inter))


@dataclass(frozen=True)
class Agreement:
    """How a model's box compares with the label of the same name on its slice."""

    label: LabelClass
    label_box: Box | None  # None: the label is not on that slice
    iou: float


def agreement(label_map: LabelMap, box: Box) -> Agreement | None:
    """The IoU of ``box`` with the bounding box, on the same slice, of the label whose name
    matches the box's (see `names_match`); None when the label map has no such structure."""
    found = label_map.find(box.label)
    if found is None:
        return None
    truth = label_box(label_map, found.value, box.plane, box.slice_index)
    return Agreement(found, truth, box_iou(box, truth) if truth is not None else 0.0)
