"""Sources that give boxes, not masks: COCO detection JSON (``coco``) and CSV tables
(``boxcsv``), the way TBX11K, VinDr-CXR or DeepLesion publish their annotations.

The source is the annotation file itself: ``coco:instances.json?images=DIR&modality=x`` or
``boxcsv:train.csv?columns=...&none=No+finding``. `trainer.data.coco` and
`trainer.data.box_csv` read the file into `BoxImage`s; this module turns each into the
`SourceImage` every other source yields, so the questions, negatives, split and card are made
exactly as for masks.

A box becomes a filled rectangle mask: one 8-connected component whose box is the annotated
box, so `trainer.data.boxes` gives it back unchanged (the same edges, the same 0–1000 grid
rounding) and a box smaller than ``--min-component-px`` pixels is left out like a small mask
component. Each box is its own object (instance), so several boxes of one label in one image
stay several boxes.

Box corners are read as continuous pixel coordinates (COCO's convention, and VinDr-CXR's) and
rounded to the nearest pixel edge. A box may overhang the image by up to `OVERHANG_PX` (the
rounding of annotation tools) and is then clipped; one further out is refused.

``?labels=ActiveTuberculosis:active tuberculosis,...`` (or a JSON file of label → name) gives
the names the text uses for the file's labels; a label it names that the file lacks is refused.

Negatives: both formats annotate every category in every image they list (COCO's rule; VinDr
reads each image for all its findings and writes "No finding" otherwise), so a label of the
file with no box in an image is absent from it. An image with no box at all is a negative image.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np

from trainer.data.box_csv import read_box_csv
from trainer.data.box_records import (
    IMAGE_SUFFIXES,
    OVERHANG_PX,
    AnnotatedBox,
    BoxFile,
    BoxImage,
    outside,
)
from trainer.data.coco import read_coco
from trainer.data.names import file_prefix, modality_from_dicom, modality_from_words
from trainer.data.sources import (
    LabelMask,
    SourceImage,
    SourceReport,
    SourceSpec,
    clean_part,
    read_rgb,
)

__all__ = [
    "BOX_KINDS",
    "BoxImageFiles",
    "box_files",
    "box_images",
    "image_size",
    "is_dicom",
    "label_names",
    "pixel_edges",
    "read_image",
]

BOX_KINDS = ("coco", "boxcsv")


def box_images(spec: SourceSpec, report: SourceReport) -> Iterator[SourceImage]:
    """The `SourceImage`s of a ``coco`` or ``boxcsv`` source.

    Raises:
        ValueError: the file is malformed (the message names the file and the record).
    """
    return (files.load() for files in box_files(spec, report))


@dataclass(frozen=True)
class BoxImageFiles:
    """One image of a box file, nothing read yet: small and picklable, so that a worker
    process can `load` it, as the mask sources' file records are."""

    name: str
    dataset: str
    case: str
    patient: str
    modality: str
    absent: tuple[str, ...]
    image: BoxImage
    source: Path  # the annotation file, named in messages

    def load(self) -> SourceImage:
        """The image with its boxes as rectangle masks (pixels rendered only when asked for).

        Raises:
            ValueError: the image file does not open, is not the size the file states, or a
                box lies outside it.
        """
        size = _checked_size(self.image, self.source)
        return SourceImage(
            name=self.name,
            dataset=self.dataset,
            case=self.case,
            patient=self.patient,
            modality=self.modality,
            plane=None,
            body_part=None,
            masks=tuple(_rectangles(self.image, size, self.source)),
            absent=self.absent,
            render=partial(read_image, self.image.file),
        )


def box_files(spec: SourceSpec, report: SourceReport) -> Iterator[BoxImageFiles]:
    """The images of a ``coco`` or ``boxcsv`` source with their boxes, image files unread
    (only a DICOM's header, for its modality).

    Raises:
        ValueError: the file is malformed (the message names the file and the record).
    """
    found = read_coco(spec) if spec.kind == "coco" else read_box_csv(spec)
    if spec.options.get("labels"):
        found = _renamed(found, label_names(spec), spec.path)
    for reason, count in found.skipped.items():
        report.skip(reason, count)
    report.notes.append(
        f"boxes, not masks, from {spec.path.name}: {sum(len(i.boxes) for i in found.images)} "
        f"boxes in {len(found.images)} images, {len(found.labels)} labels; each box is one "
        "object, its corners rounded to the nearest pixel edge (an overhang of up to "
        f"{OVERHANG_PX:g} px clipped); a label of the file without a box in an image is taken "
        "as absent from it (the file annotates every label in every image it lists)"
    )
    for image in found.images:
        files = _files(image, found.labels, spec)
        if files is None:
            report.skip("modality unknown (give ?modality=)")
        else:
            yield files


def label_names(spec: SourceSpec) -> dict[str, str]:
    """``?labels=`` of a box source: the file's label → the name the text uses, as
    ``ActiveTuberculosis:active tuberculosis,...`` or a JSON object in a file.

    Raises:
        ValueError: a piece is not LABEL:NAME, or the JSON file holds no object of strings.
    """
    option = spec.options["labels"]
    if Path(option).is_file():
        from trainer._json_stream import read_json

        mapping = read_json(option, "the labels file")
        if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
            raise ValueError(f"Unable to read labels from '{option}' as it is not a JSON object")
        return {str(k).strip(): v.strip() for k, v in mapping.items()}
    names = {}
    for piece in option.split(","):
        label, sep, name = piece.partition(":")
        if not sep or not label.strip() or not name.strip():
            raise ValueError(
                f"Unable to read labels={option!r} as {piece!r} is not LABEL:NAME "
                "(e.g. ActiveTuberculosis:active tuberculosis)"
            )
        names[label.strip()] = name.strip()
    return names


def _renamed(found: BoxFile, names: dict[str, str], file: Path) -> BoxFile:
    unknown = sorted(set(names) - set(found.labels))
    if unknown:
        raise ValueError(
            f"Unable to rename {unknown} (labels=) as '{file}' has no such label; its labels: "
            f"{list(found.labels)[:20]}"
        )

    def new(label: str) -> str:
        return names.get(label, label)

    images = tuple(
        replace(
            image,
            boxes=tuple(replace(box, label=new(box.label)) for box in image.boxes),
            also_present=tuple(new(label) for label in image.also_present),
        )
        for image in found.images
    )
    labels = tuple(dict.fromkeys(new(label) for label in found.labels))
    return BoxFile(labels, images, found.skipped)


def _files(image: BoxImage, labels: Sequence[str], spec: SourceSpec) -> BoxImageFiles | None:
    key = Path(image.key)
    # Only an image suffix is dropped: DICOM files named by their UID are all dots.
    stem = str(key.with_suffix("") if key.suffix.lower() in IMAGE_SUFFIXES else key)
    modality = spec.options.get("modality") or _modality(image.file, stem, spec)
    if modality is None:
        return None
    present = {box.label for box in image.boxes} | set(image.also_present)
    case = clean_part(stem)
    return BoxImageFiles(
        name=f"{file_prefix(modality)}--{spec.dataset}--{case}.png",
        dataset=spec.dataset,
        case=case,
        patient=clean_part(image.patient) if image.patient else case,
        modality=modality,
        absent=tuple(sorted(set(labels) - present)),
        image=image,
        source=spec.path,
    )


def _modality(file: Path, stem: str, spec: SourceSpec) -> str | None:
    """From a DICOM image's header, else from a word of its name, the dataset's or the
    annotation file's."""
    if file.is_file() and is_dicom(file):
        import pydicom

        code = pydicom.dcmread(file, stop_before_pixels=True).get("Modality", "")
        return modality_from_dicom(str(code))
    for text in (stem, spec.dataset, spec.path.stem):
        found = modality_from_words(text)
        if found is not None:
            return found
    return None


def _checked_size(image: BoxImage, source: Path) -> tuple[int, int]:
    """The image file's (width, height), which must be the size the annotation states."""
    try:
        size = image_size(image.file)
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"Unable to read '{source}': {image.record} names '{image.file}', which is not "
            f"a readable image ({exc})"
        ) from exc
    if image.size is not None and tuple(image.size) != tuple(size):
        raise ValueError(
            f"Unable to read '{source}': {image.record} says '{image.key}' is "
            f"{image.size[0]}x{image.size[1]} but the file is {size[0]}x{size[1]}"
        )
    return size


def is_dicom(file: Path) -> bool:
    """Whether a file is DICOM (its preamble's "DICM"), whatever its name: VinDr-CXR's are
    ``<id>.dicom``, many archives' have no suffix."""
    with open(file, "rb") as handle:
        handle.seek(128)
        return handle.read(4) == b"DICM"


def image_size(file: Path) -> tuple[int, int]:
    """(width, height) of an image file, from its header.

    Raises:
        ValueError: not an image Pillow or pydicom reads, or a DICOM of several frames (a box
            names no frame).
    """
    if is_dicom(file):
        import pydicom

        header = pydicom.dcmread(file, stop_before_pixels=True)
        if int(header.get("NumberOfFrames", 1) or 1) > 1 or "Rows" not in header:
            raise ValueError("a DICOM file of one frame is needed for boxes")
        return int(header.Columns), int(header.Rows)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as opened:
            return opened.size
    except UnidentifiedImageError as exc:
        raise ValueError(str(exc)) from exc


def read_image(file: Path) -> np.ndarray:
    """An image file as (rows, cols, 3) uint8 RGB; a grey DICOM image (an X-ray, a CT slice)
    clipped to its own 0.5–99.5 percentiles and scaled to 0–255, the way
    `birdview.core.model_input` renders what the model sees (SA-Med2D's normalisation)."""
    if not is_dicom(file):
        return read_rgb(file)
    from birdview.core.errors import VolumeReadError
    from birdview.core.io.dicom import read_dicom_slice, scan_dicom
    from birdview.core.model_input import HIGH_PERCENTILE, LOW_PERCENTILE

    entries, problems = scan_dicom([str(file)])
    if not entries:
        cause = problems[0].message if problems else "no image in it"
        raise ValueError(f"Unable to read the DICOM image '{file}': {cause}")
    # Rescaled (Hounsfield units for CT) and MONOCHROME1 inverted, in the stored pixel grid
    # that the boxes are drawn on.
    try:
        pixels = read_dicom_slice(entries[0], 0)
    except VolumeReadError as exc:  # a damaged file or a missing codec: one line, as others
        raise ValueError(str(exc)) from exc
    if pixels.ndim == 3:
        return np.ascontiguousarray(pixels, dtype=np.uint8)
    values = pixels.astype(np.float64)
    low, high = (float(v) for v in np.percentile(values, [LOW_PERCENTILE, HIGH_PERCENTILE]))
    high = high if high > low else low + 1.0
    grey = np.rint((np.clip(values, low, high) - low) * (255.0 / (high - low))).astype(np.uint8)
    return np.repeat(grey[:, :, np.newaxis], 3, axis=2)


def _rectangles(image: BoxImage, size: tuple[int, int], source: Path) -> Iterator[LabelMask]:
    """One filled rectangle mask per box, numbered per label in (label, x1, y1) order."""
    width, height = size
    numbered: Counter = Counter()
    edges = [(box, pixel_edges(box, size, source, image.key)) for box in image.boxes]
    for box, (x1, y1, x2, y2) in sorted(edges, key=lambda be: (be[0].label, be[1])):
        pixels = np.zeros((height, width), dtype=bool)
        pixels[y1:y2, x1:x2] = True
        yield LabelMask(box.label, numbered[box.label], pixels)
        numbered[box.label] += 1


def pixel_edges(
    box: AnnotatedBox, size: tuple[int, int], file: Path, image_key: str
) -> tuple[int, int, int, int]:
    """A box's corners rounded to pixel edges within the image, at least one pixel wide.

    Raises:
        ValueError: a corner lies more than `OVERHANG_PX` outside the image.
    """
    width, height = size
    corners = (box.x1, box.y1, box.x2, box.y2)
    limits = (width, height, width, height)
    if outside(corners, size):
        raise ValueError(
            f"Unable to read '{file}': {box.record} has the box ({box.x1:g},{box.y1:g}),"
            f"({box.x2:g},{box.y2:g}) outside the {width}x{height} image '{image_key}'"
        )
    x1, y1, x2, y2 = (
        min(max(math.floor(c + 0.5), 0), top) for c, top in zip(corners, limits, strict=True)
    )
    # A box thinner than a pixel still covers the pixel it lies in.
    x1, x2 = (x1, x2) if x2 > x1 else (min(x1, width - 1), min(x1, width - 1) + 1)
    y1, y2 = (y1, y2) if y2 > y1 else (min(y1, height - 1), min(y1, height - 1) + 1)
    return x1, y1, x2, y2
