"""The ``masks2d`` source (BiomedParse): ``<split>/<stem>.png`` and
``<split>_mask/<stem>_<target>.png``, ``+`` for spaces in the target; the modality is a word
of the stem. See `trainer.data.sources`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from trainer.data.image_files import ImageFiles, image_files_in, owner_of
from trainer.data.names import modality_from_words
from trainer.data.sammed2d import name_2d
from trainer.data.source_records import SourceImage, SourceReport, SourceSpec, clean_part

__all__ = ["mask_folder_pairs", "masks2d_files", "masks2d_images"]


def mask_folder_pairs(path: Path) -> list[tuple[Path, Path]]:
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
    for image_dir, mask_dir in mask_folder_pairs(spec.path):
        images = image_files_in(image_dir)
        owned = _masks_by_image(images, image_files_in(mask_dir), report)
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
        name=name_2d(image.stem, modality, spec.dataset),
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
