"""Where the images and masks come from: one small adapter per kind of source folder.

A source is named on the command line as ``[KIND:]PATH[?key=value&...]``; without a kind it
is detected from the folder's layout:

==============  ==========================================================================
kind            layout
==============  ==========================================================================
``sammed2d``    SA-Med2D: ``images/<case>_<slice>.png``,
                ``masks/<case>_<slice>_<label>_<instance:03d>.png``, optional
                image2label / label2image JSON indexes (paths relative to the folder above)
``masks2d``     BiomedParse: ``<split>/<stem>.png`` and ``<split>_mask/<stem>_<target>.png``,
                ``+`` for spaces in the target; the modality is a word of the stem
``nifti``       NIfTI images + label maps (``imagesTr/labelsTr`` pairs by file name; else a
                ``classes.json`` or ``dataset.json`` says which files are label maps, and each
                is paired with the image on the same grid); see `trainer.data.volumes`
``dicomseg``    DICOM series + DICOM SEG objects (highdicom) in one folder tree
``coco``        a COCO detection ``.json`` file (boxes, not masks); see `trainer.data.coco`
``boxcsv``      a ``.csv`` of boxes, one row per box (VinDr-CXR); see `trainer.data.box_csv`
==============  ==========================================================================

Options: ``dataset`` (the name in the image file names; default: the folder's name),
``modality`` (a Med-GRIT key, when names do not say it), ``labels`` (``1:edema,2:tumour`` or a
JSON file of value → name, for label maps without a class map) and ``licence`` (stated by the
user; otherwise read from a LICENSE file in the folder or the one above it). Box sources also
take ``images`` (the folder their image names are relative to), and CSV ones ``columns`` and
``none`` (`trainer.data.box_csv`).

Every adapter yields `SourceImage`s: an RGB image (rendered only when asked for), its masks,
and the labels known to be absent from it (negatives are drawn only from those).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np

from trainer._json_stream import read_json
from trainer.data.names import file_prefix, modality_from_words

__all__ = [
    "KINDS",
    "OPTIONS",
    "ImageFiles",
    "LabelMask",
    "SourceImage",
    "SourceReport",
    "SourceSpec",
    "clean_part",
    "otsu_threshold",
    "parse_source",
    "read_mask",
]

logger = logging.getLogger(__name__)

KINDS = ("sammed2d", "masks2d", "nifti", "dicomseg", "coco", "boxcsv")
OPTIONS = ("dataset", "modality", "labels", "licence", "images", "columns", "none")
# Box sources are one annotation file, not a folder (`trainer.data.box_sources`).
_BOX_FILE_KINDS = {".json": "coco", ".csv": "boxcsv"}
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_LICENCE_FILES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "LICENCE.txt", "COPYING")


@dataclass(frozen=True)
class SourceSpec:
    """A parsed SOURCE argument: kind, path, options, and the text as given."""

    kind: str
    path: Path
    options: dict[str, str]
    text: str

    @property
    def dataset(self) -> str:
        # An annotation file (a box source) names its dataset by its stem.
        named = self.path.resolve()
        default = named.stem if named.is_file() else named.name
        return clean_part(self.options.get("dataset") or default)


@dataclass(frozen=True)
class LabelMask:
    """One object: a label (as the source spells it), its instance number, and its pixels."""

    label: str
    instance: int
    pixels: np.ndarray


@dataclass(frozen=True)
class SourceImage:
    """One image with its masks, as an adapter yields it.

    Attributes:
        name: the output file name, SA-Med2D style (its modality key before the first "_").
        dataset, case: where it comes from; images of one case always share a split.
        patient: the split group (several cases of one patient go together); == case when
            the source does not know the patient.
        modality: the Med-GRIT key ("ct", "mr", ...) or an extra key ("pathology", "oct").
        plane: "axial", "coronal" or "sagittal" for slices of volumes, else None.
        body_part: a word for the imaged region when the source gives one ("abdomen").
        masks: the objects in the image.
        absent: labels the source annotates completely that have no pixel here.
        render: returns the (rows, cols, 3) uint8 RGB image.
    """

    name: str
    dataset: str
    case: str
    patient: str
    modality: str
    plane: str | None
    body_part: str | None
    masks: tuple[LabelMask, ...]
    absent: tuple[str, ...]
    render: Callable[[], np.ndarray]


@dataclass
class SourceReport:
    """What the data card says about one source."""

    text: str
    kind: str
    dataset: str
    licence: dict[str, str]
    images: int = 0
    skipped: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] += count


@dataclass(frozen=True, slots=True)
class ImageFiles:
    """A 2D image and its mask files, nothing read yet: small, and sent as is to the worker
    process that reads it (`load`). ``masks`` holds (label, instance, file) triples.

    A build's plan holds one per image, so the paths are plain strings (a `Path` costs
    several times more memory) and the instances have no ``__dict__``.
    """

    name: str
    dataset: str
    case: str
    modality: str
    body_part: str | None
    absent: tuple[str, ...]
    image: str
    masks: tuple[tuple[str, int, str], ...]

    def load(self) -> SourceImage:
        """The image with its masks read (the pixels are rendered only when asked for)."""
        return SourceImage(
            name=self.name,
            dataset=self.dataset,
            case=self.case,
            patient=self.case,
            modality=self.modality,
            plane=None,
            body_part=self.body_part,
            masks=tuple(
                LabelMask(label, n, read_mask(Path(path))) for label, n, path in self.masks
            ),
            absent=self.absent,
            render=_rgb_loader(Path(self.image)),
        )


# -- parsing --------------------------------------------------------------------------------


def parse_source(text: str) -> SourceSpec:
    """``[KIND:]PATH[?key=value&...]`` → `SourceSpec`, detecting the kind when not given.

    Raises:
        ValueError: the path does not exist or is not a folder, an option is unknown, or the
            kind cannot be detected.
    """
    kind, rest = None, str(text)
    head, sep, tail = rest.partition(":")
    if sep and head in KINDS:
        kind, rest = head, tail
    path_text, query = (rest, "") if os.path.exists(rest) else _split_query(rest)
    path = Path(path_text)
    if not path.exists():
        raise ValueError(f"Unable to use source {text!r} as the path {path_text!r} does not exist")
    if kind is None and path.is_file():
        kind = _BOX_FILE_KINDS.get(path.suffix.lower())
    if not path.is_dir() and kind not in _BOX_FILE_KINDS.values():
        raise ValueError(
            f"Unable to use source {text!r} as {path_text!r} is a file, not a folder (files "
            "are read as boxes: COCO .json or .csv)"
        )
    if path.is_dir() and kind in _BOX_FILE_KINDS.values():
        raise ValueError(
            f"Unable to use source {text!r} as {kind} reads one annotation file, and "
            f"{path_text!r} is a folder"
        )
    options = dict(parse_qsl(query, keep_blank_values=False))
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(
            f"Unable to use source {text!r} as the option(s) {unknown} are unknown; "
            f"known: {list(OPTIONS)}"
        )
    return SourceSpec(kind or detect_kind(path), path, options, str(text))


def _split_query(text: str) -> tuple[str, str]:
    path_text, _, query = text.partition("?")
    return path_text, query


def detect_kind(path: Path) -> str:
    """The adapter for a folder, from its layout (see the module docstring).

    Raises:
        ValueError: the path is not a folder.
    """
    if path.is_dir():
        if _sammed2d_root(path) is not None:
            return "sammed2d"
        if _mask_folder_pairs(path):
            return "masks2d"
        if any(_nifti_files(path)):
            return "nifti"
        return "dicomseg"
    raise ValueError(f"Unable to use source '{path}' as it is not a folder")


def _nifti_files(path: Path) -> Iterator[Path]:
    return (p for p in path.rglob("*") if p.name.endswith((".nii", ".nii.gz")))


def clean_part(text: str) -> str:
    """A piece of a file name: letters, digits, "_", "." and single "-" (the parts of an
    SA-Med2D name are separated by "--")."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_.-")
    return re.sub(r"-{2,}", "-", cleaned) or "unnamed"


def read_licence(spec: SourceSpec) -> dict[str, str]:
    """The licence as the user stated it (``?licence=``) and/or as a LICENSE file in the
    source folder (or the one above it) names it on its first line."""
    licence: dict[str, str] = {}
    if spec.options.get("licence"):
        licence["stated"] = spec.options["licence"]
    folder = spec.path if spec.path.is_dir() else spec.path.parent
    for candidate in (folder, folder.parent):
        for name in _LICENCE_FILES:
            file = candidate / name
            if file.is_file():
                data = file.read_bytes()
                licence["file"] = os.path.relpath(file, spec.path.parent)
                licence["name"] = _licence_name(data.decode("utf-8", "replace"))
                licence["sha256"] = hashlib.sha256(data).hexdigest()
                return licence
    if not licence:
        licence["name"] = "not stated (no LICENSE file found; give ?licence=...)"
    return licence


def _licence_name(text: str) -> str:
    """The licence's title: its first non-empty line, with a following "Version ..." line
    ("Apache License Version 2.0, January 2004")."""
    lines = [line.strip() for line in text.splitlines() if line.strip()][:2]
    if len(lines) == 2 and lines[1].lower().startswith("version"):
        return f"{lines[0]} {lines[1]}"[:120]
    return lines[0][:120] if lines else ""


# -- reading 2D files -----------------------------------------------------------------------


def read_rgb(path: Path) -> np.ndarray:
    """An image file as (rows, cols, 3) uint8 RGB (alpha dropped)."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


# Formats whose encoders blur edges (JPEG, lossy JPEG 2000 and WebP): their masks ring, so grey
# values near an edge are neither 0 nor the foreground value.
_LOSSY_FORMATS = frozenset({"JPEG", "JPEG2000", "WEBP", "MPO"})
# The 8-bit modes Pillow decodes those formats to; a 16-bit JPEG 2000 is read with ``> 0``.
_EIGHT_BIT_MODES = frozenset({"L", "LA", "RGB", "RGBA", "CMYK", "YCbCr", "P"})


def read_mask(path: Path) -> np.ndarray:
    """A mask file as a boolean array.

    Lossless files (PNG, BMP, TIFF) keep every non-zero grey value as foreground, so label
    values of any size count. 8-bit lossy files (JPEG, JPEG 2000, WebP) are cut at Otsu's
    threshold of their grey histogram: ``> 0`` there would take in the compression's ringing
    around every edge (boxes several grid units too large, and specks as extra components).
    """
    from PIL import Image

    with Image.open(path) as image:
        lossy = image.format in _LOSSY_FORMATS and image.mode in _EIGHT_BIT_MODES
        grey = np.asarray(image.convert("L"))
    return grey > (otsu_threshold(grey) if lossy else 0)


def otsu_threshold(grey: np.ndarray) -> int:
    """Otsu's threshold of a uint8 image: the ``t`` for which ``grey > t`` splits the grey
    values into two classes of the largest between-class variance.

    A clean two-valued mask gives its lower value (every ``t`` between the two splits alike
    and the first wins), so a lossless mask saved as JPEG without ringing reads as ``> 0``
    would; a one-valued image gives 0 (all foreground unless it is black).
    """
    counts = np.bincount(grey.ravel(), minlength=256).astype(np.float64)
    weight = np.cumsum(counts)  # pixels <= t
    mass = np.cumsum(counts * np.arange(256))
    total, total_mass = weight[-1], mass[-1]
    upper = total - weight
    with np.errstate(divide="ignore", invalid="ignore"):
        # between-class variance * total^2 = (total_mass * w0 - total * m0)^2 / (w0 * w1)
        spread = (total_mass * weight - total * mass) ** 2 / (weight * upper)
    spread[~np.isfinite(spread)] = -1.0  # one class empty: not a split
    return int(np.argmax(spread)) if spread.max() > 0 else 0


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)


def _rgb_loader(path: Path) -> Callable[[], np.ndarray]:
    return lambda: read_rgb(path)


# -- sammed2d -------------------------------------------------------------------------------

_SAMMED2D_NAME = re.compile(r"^([a-z]+)_([a-z0-9]+)--([^-].*?)--(.+?)--([xyz])_(\d+)$")
_SAMMED2D_RAY = re.compile(r"^(x)_ray--(.+?)--(.+)$")
_INSTANCE = re.compile(r"^(.+)_(\d{3})$")
_CASE_SLICE = re.compile(r"^(.+)_(\d+)$")


def _sammed2d_root(path: Path) -> Path | None:
    """The folder holding images/ and masks/: the path itself or its only such child."""
    if (path / "images").is_dir() and (path / "masks").is_dir():
        return path
    children = [c for c in sorted(path.iterdir()) if c.is_dir() and _sammed2d_root_here(c)]
    return children[0] if len(children) == 1 else None


def _sammed2d_root_here(path: Path) -> bool:
    return (path / "images").is_dir() and (path / "masks").is_dir()


def sammed2d_images(spec: SourceSpec, report: SourceReport) -> Iterator[SourceImage]:
    """SA-Med2D images with their instance masks."""
    return (files.load() for files in sammed2d_files(spec, report))


def sammed2d_files(spec: SourceSpec, report: SourceReport) -> Iterator[ImageFiles]:
    """SA-Med2D images with their mask files, unread (the layout alone)."""
    # Resolved, because the JSON indexes' paths are resolved before they are compared.
    root = _sammed2d_root(spec.path.resolve())
    if root is None:
        from trainer.data.layouts import looked_at

        raise ValueError(
            f"Unable to read '{spec.path}' as SA-Med2D: no images/ and masks/; "
            f"{looked_at(spec.kind, spec.path)}"
        )
    images = _image_files(root / "images")
    pairs = _sammed2d_pairs(root, images, report)
    masks_by_case: dict[str, set[str]] = defaultdict(set)
    described = {}
    for image in images:
        case, modality = _sammed2d_case(image.stem, spec)
        described[image] = (case, modality)
        for mask in pairs.get(image, []):
            masks_by_case[case].add(_mask_label(mask.stem, image.stem)[0])
    for image in images:
        case, modality = described[image]
        mask_files = pairs.pop(image, [])  # freed as the plan takes them over
        if not mask_files:
            report.skip("no masks")
            continue
        if modality is None:
            report.skip("modality unknown (give ?modality=)")
            continue
        masks = tuple((*_mask_label(m.stem, image.stem), str(m)) for m in mask_files)
        present = {label for label, _, _ in masks}
        yield ImageFiles(
            name=_name_2d(image.stem, modality, spec.dataset),
            dataset=spec.dataset,
            case=case,
            modality=modality,
            body_part=None,
            # Only the case's other slices tell what is annotated: SA-Med2D drops small masks,
            # so a label missing from one image may still be visible in it.
            absent=tuple(sorted(masks_by_case[case] - present)),
            image=str(image),
            masks=masks,
        )


def owner_of(mask_stem: str, by_stem: dict[str, Path]) -> Path | None:
    """The image whose stem, then "_", starts ``mask_stem``; the longest such stem wins, so
    "1_CT" never takes the masks of "1_CT_lung". A look-up per "_" of the mask's name, not a
    pass over every image (SA-Med2D-20M: 20 M masks, 3.7 M images)."""
    cut = mask_stem.rfind("_")
    while cut > 0:
        found = by_stem.get(mask_stem[:cut])
        if found is not None:
            return found
        cut = mask_stem.rfind("_", 0, cut)
    return None


def _sammed2d_pairs(root: Path, images: list[Path], report: SourceReport) -> dict:
    """image → mask files, from the JSON indexes where they list them, else by name."""
    masks = sorted(p for p in (root / "masks").iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
    pairs: dict[Path, list[Path]] = defaultdict(list)
    listed: set[Path] = set()
    for index in sorted(root.glob("*.json")):
        for image, mask in _json_pairs(index, root):
            if image.is_file() and mask.is_file() and mask not in listed:
                pairs[image].append(mask)
                listed.add(mask)
    by_stem = {image.stem: image for image in reversed(images)}  # the first of a stem wins
    for mask in masks:
        if mask in listed:
            continue
        owner = owner_of(mask.stem, by_stem)
        if owner is None:
            report.skip("mask without an image")
            continue
        pairs[owner].append(mask)
    return {image: sorted(found) for image, found in pairs.items()}


def _json_pairs(index: Path, root: Path) -> list[tuple[Path, Path]]:
    """(image, mask) pairs of an image2label (image → [masks]) or label2image (mask → image)
    index; its paths are relative to the folder above ``root`` (SA-Med2D's convention)."""
    try:
        data = read_json(index)
    except (OSError, ValueError):  # not an index after all: pairs are then found by name
        return []
    if not isinstance(data, dict):
        return []
    pairs = []
    for key, value in data.items():
        if isinstance(value, list):
            pairs.extend((key, mask) for mask in value if isinstance(mask, str))
        elif isinstance(value, str):
            pairs.append((value, key))
    return [(_resolve(root, image), _resolve(root, mask)) for image, mask in pairs]


def _resolve(root: Path, relative: str) -> Path:
    for base in (root.parent, root):
        candidate = (base / relative).resolve()
        if candidate.is_file():
            return candidate
    return (root.parent / relative).resolve()


def _sammed2d_case(stem: str, spec: SourceSpec) -> tuple[str, str | None]:
    """(case, modality key) of an SA-Med2D image stem.

    SA-Med2D-20M names carry both ("ct_00--AbdomenCT1K--Case_00220--x_0359"). The demo names
    ("amos_0006_90", "s0114_111") do not; for them the modality comes from the dataset's own
    convention: AMOS ids from 500 up are MR, below are CT; TotalSegmentator's sNNNN are CT.
    """
    given = spec.options.get("modality")
    full = _SAMMED2D_NAME.match(stem) or _SAMMED2D_RAY.match(stem)
    if full:
        case = full.group(4) if full.re is _SAMMED2D_NAME else full.group(3)
        return clean_part(case), given or full.group(1)
    match = _CASE_SLICE.match(stem)
    case = match.group(1) if match else stem
    return clean_part(case), given or _demo_modality(case)


def _demo_modality(case: str) -> str | None:
    amos = re.fullmatch(r"amos_(\d+)", case)
    if amos:
        return "mr" if int(amos.group(1)) >= 500 else "ct"
    if re.fullmatch(r"s\d{4}", case):
        return "ct"
    return modality_from_words(case)


def _mask_label(mask_stem: str, image_stem: str) -> tuple[str, int]:
    rest = mask_stem[len(image_stem) + 1 :] if mask_stem.startswith(image_stem + "_") else mask_stem
    match = _INSTANCE.match(rest)
    return (match.group(1), int(match.group(2))) if match else (rest, 0)


def _name_2d(stem: str, modality: str, dataset: str) -> str:
    """A file name whose first "_"-piece is the modality key; SA-Med2D-20M names are kept."""
    if _SAMMED2D_NAME.match(stem) or _SAMMED2D_RAY.match(stem):
        return f"{stem}.png"
    return f"{file_prefix(modality)}--{dataset}--{clean_part(stem)}.png"


# -- masks2d (BiomedParse) ------------------------------------------------------------------


def _mask_folder_pairs(path: Path) -> list[tuple[Path, Path]]:
    """(image folder, mask folder) pairs: ``X/`` next to ``X_mask/``."""
    return [
        (child, path / f"{child.name}_mask")
        for child in sorted(path.iterdir())
        if child.is_dir() and (path / f"{child.name}_mask").is_dir()
    ]


def masks2d_images(spec: SourceSpec, report: SourceReport) -> Iterator[SourceImage]:
    """Images whose masks are named ``<image stem>_<target>.png`` (BiomedParse)."""
    return (files.load() for files in masks2d_files(spec, report))


def masks2d_files(spec: SourceSpec, report: SourceReport) -> Iterator[ImageFiles]:
    """BiomedParse images with their mask files, unread (the layout alone)."""
    for image_dir, mask_dir in _mask_folder_pairs(spec.path):
        images = _image_files(image_dir)
        owned = _masks_by_image(images, _image_files(mask_dir), report)
        for image in images:
            yield from _masks2d_image(image, owned.get(image, []), spec, report)


def _masks_by_image(images: list[Path], masks: list[Path], report: SourceReport) -> dict:
    by_stem = {image.stem: image for image in reversed(images)}  # the first of a stem wins
    owned: dict[Path, list[Path]] = defaultdict(list)
    for mask in masks:
        # The longest stem wins, so "1_CT" never takes the masks of "1_CT_lung".
        owner = owner_of(mask.stem, by_stem)
        if owner is None:
            report.skip("mask without an image")
        else:
            owned[owner].append(mask)
    return owned


def _masks2d_image(
    image: Path, masks: list[Path], spec: SourceSpec, report: SourceReport
) -> Iterator[ImageFiles]:
    if not masks:
        report.skip("no masks")
        return
    modality = spec.options.get("modality") or modality_from_words(image.stem)
    if modality is None:
        report.skip("modality unknown (give ?modality=)")
        return
    yield ImageFiles(
        name=_name_2d(image.stem, modality, spec.dataset),
        dataset=spec.dataset,
        case=clean_part(image.stem),
        modality=modality,
        body_part=_body_part(image.stem),
        # The masks are the targets of a task, not a complete annotation: nothing is known
        # to be absent.
        absent=(),
        image=str(image),
        masks=tuple((m.stem[len(image.stem) + 1 :], 0, str(m)) for m in sorted(masks)),
    )


def _body_part(stem: str) -> str | None:
    """The words after the modality word of "06_CT_abdomen" ("abdomen")."""
    words = stem.split("_")
    for n, word in enumerate(words):
        if modality_from_words(word) is not None and n + 1 < len(words):
            return " ".join(words[n + 1 :]).replace("+", " ").lower()
    return None
