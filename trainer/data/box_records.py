"""What the box-file readers (`trainer.data.coco`, `trainer.data.box_csv`) give
`trainer.data.box_sources`: images with their boxes, and where the image files are."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from trainer.data.sources import SourceSpec

__all__ = [
    "IMAGE_SUFFIXES",
    "OVERHANG_PX",
    "AnnotatedBox",
    "BoxFile",
    "BoxImage",
    "find_image",
    "image_folder",
    "outside",
]

# A box may overhang its image by this much (annotation tools round) and is then clipped.
OVERHANG_PX = 1.0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dicom", ".dcm")
# Where images usually sit relative to the annotation file: beside it, in images/ or imgs/
# (TBX11K), one or two levels up (COCO's annotations/ and TBX11K's annotations/json/).
_IMAGE_DIRS = ("", "images", "imgs")
_LEVELS_UP = 3


@dataclass(frozen=True)
class AnnotatedBox:
    """One box: its label and corners in pixel coordinates, and the record it came from."""

    label: str
    x1: float
    y1: float
    x2: float
    y2: float
    record: str  # "annotation 17", "row 5": named in messages


@dataclass(frozen=True)
class BoxImage:
    """One image of an annotation file with its boxes.

    Attributes:
        file: the image file.
        key: the image as the annotation file names it ("tb/tb0005.png"): the output name
            and the case come from it.
        record: the record naming the image, for messages ("image 3", "row 2").
        boxes: its boxes (none for an image read and found without findings).
        size: (width, height) the annotation file states, checked against the file.
        patient: the split group when the file gives one, else None (the image alone).
        also_present: labels in the image without a box of their own (COCO crowd boxes):
            never taken as absent.
    """

    file: Path
    key: str
    record: str
    boxes: tuple[AnnotatedBox, ...]
    size: tuple[int, int] | None = None
    patient: str | None = None
    also_present: tuple[str, ...] = ()


@dataclass(frozen=True)
class BoxFile:
    """What a reader found: every label the file annotates, its images, and box counts it
    left out on purpose (crowd boxes), by reason."""

    labels: tuple[str, ...]
    images: tuple[BoxImage, ...]
    skipped: Counter


def outside(corners: Sequence[float], size: tuple[int, int]) -> bool:
    """Whether a box's (x1, y1, x2, y2) reaches more than `OVERHANG_PX` beyond a ``size`` =
    (width, height) image."""
    width, height = size
    limits = (width, height, width, height)
    return any(
        c < -OVERHANG_PX or c > top + OVERHANG_PX for c, top in zip(corners, limits, strict=True)
    )


def image_folder(spec: SourceSpec, first_key: str | None, first_record: str) -> Path:
    """The folder the annotation file's image names are relative to: ``?images=`` (relative
    to the working folder, else to the file's folder), or the first of the usual places where
    the first image is found.

    Raises:
        ValueError: ``?images=`` is not a folder, or no usual place holds the first image.
    """
    given = spec.options.get("images")
    if given:
        for folder in (Path(given), spec.path.parent / given):
            if folder.is_dir():
                return folder
        raise ValueError(
            f"Unable to use source {spec.text!r} as the images folder {given!r} does not exist"
        )
    candidates = [up / sub for up in spec.path.parents[:_LEVELS_UP] for sub in _IMAGE_DIRS]
    candidates = list(dict.fromkeys(c for c in candidates if c.is_dir()))
    if first_key is None:
        return spec.path.parent
    for folder in candidates:
        if find_image(folder, first_key) is not None:
            return folder
    looked = ", ".join(f"'{c}'" for c in candidates[:6])
    raise ValueError(
        f"Unable to find the images of '{spec.path}': {first_record} names '{first_key}', which is "
        f"in none of {looked}; give ?images=FOLDER"
    )


def find_image(folder: Path, key: str) -> Path | None:
    """The file ``key`` names under ``folder``: as written, or with an image suffix added
    (VinDr-CXR's image ids carry none)."""
    exact = folder / key
    if exact.is_file():
        return exact
    for suffix in IMAGE_SUFFIXES:
        candidate = folder / f"{key}{suffix}"
        if candidate.is_file():
            return candidate
    return None
