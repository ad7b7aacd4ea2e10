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
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl

# The adapters' records and readers live in their own modules; callers import them from here.
from trainer.data.image_files import ImageFiles, otsu_threshold, read_mask, read_rgb
from trainer.data.masks2d import mask_folder_pairs, masks2d_files, masks2d_images
from trainer.data.sammed2d import sammed2d_files, sammed2d_images, sammed2d_root
from trainer.data.source_records import (
    LabelMask,
    SourceImage,
    SourceReport,
    SourceSpec,
    clean_part,
)

__all__ = [
    "KINDS",
    "OPTIONS",
    "ImageFiles",
    "LabelMask",
    "SourceImage",
    "SourceReport",
    "SourceSpec",
    "clean_part",
    "masks2d_files",
    "masks2d_images",
    "otsu_threshold",
    "parse_source",
    "read_mask",
    "read_rgb",
    "sammed2d_files",
    "sammed2d_images",
]

logger = logging.getLogger(__name__)

KINDS = ("sammed2d", "masks2d", "nifti", "dicomseg", "coco", "boxcsv")
OPTIONS = ("dataset", "modality", "labels", "licence", "images", "columns", "none")
# Box sources are one annotation file, not a folder (`trainer.data.box_sources`).
_BOX_FILE_KINDS = {".json": "coco", ".csv": "boxcsv"}
_LICENCE_FILES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "LICENCE.txt", "COPYING")


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
        if sammed2d_root(path) is not None:
            return "sammed2d"
        if mask_folder_pairs(path):
            return "masks2d"
        if any(_nifti_files(path)):
            return "nifti"
        return "dicomseg"
    raise ValueError(f"Unable to use source '{path}' as it is not a folder")


def _nifti_files(path: Path) -> Iterator[Path]:
    return (p for p in path.rglob("*") if p.name.endswith((".nii", ".nii.gz")))


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
