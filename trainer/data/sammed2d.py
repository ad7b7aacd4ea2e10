"""The ``sammed2d`` source: SA-Med2D's ``images/<case>_<slice>.png`` and
``masks/<case>_<slice>_<label>_<instance:03d>.png``, with optional image2label / label2image
JSON indexes (paths relative to the folder above). See `trainer.data.sources`."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from trainer._json_stream import read_json
from trainer.data.image_files import IMAGE_SUFFIXES, ImageFiles, image_files_in, owner_of
from trainer.data.names import file_prefix, modality_from_words
from trainer.data.source_records import SourceImage, SourceReport, SourceSpec, clean_part

__all__ = ["name_2d", "sammed2d_files", "sammed2d_images", "sammed2d_root"]

_SAMMED2D_NAME = re.compile(r"^([a-z]+)_([a-z0-9]+)--([^-].*?)--(.+?)--([xyz])_(\d+)$")
_SAMMED2D_RAY = re.compile(r"^(x)_ray--(.+?)--(.+)$")
_INSTANCE = re.compile(r"^(.+)_(\d{3})$")
_CASE_SLICE = re.compile(r"^(.+)_(\d+)$")


def sammed2d_root(path: Path) -> Path | None:
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
    root = sammed2d_root(spec.path.resolve())
    if root is None:
        from trainer.data.layouts import looked_at

        raise ValueError(
            f"Unable to read '{spec.path}' as SA-Med2D: no images/ and masks/; "
            f"{looked_at(spec.kind, spec.path)}"
        )
    images = image_files_in(root / "images")
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
            name=name_2d(image.stem, modality, spec.dataset),
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


def _sammed2d_pairs(root: Path, images: list[Path], report: SourceReport) -> dict:
    """image → mask files, from the JSON indexes where they list them, else by name."""
    masks = sorted(p for p in (root / "masks").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
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


def name_2d(stem: str, modality: str, dataset: str) -> str:
    """A file name whose first "_"-piece is the modality key; SA-Med2D-20M names are kept."""
    if _SAMMED2D_NAME.match(stem) or _SAMMED2D_RAY.match(stem):
        return f"{stem}.png"
    return f"{file_prefix(modality)}--{dataset}--{clean_part(stem)}.png"
