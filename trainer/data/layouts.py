"""What a source kind expects, and what was found: the second half of a refusal.

When a source gives no usable image, the user needs to know which files the adapter looked
at and what it was looking for; `looked_at` says both in one clause, for example
"looked at 12 files under 'brats_mr' (imagesTr/BraTS2021_01646.nii.gz, ...); masks2d expects
X/<stem>.png beside X_mask/<stem>_<target>.png".
"""

from __future__ import annotations

import itertools
from pathlib import Path

__all__ = ["EXPECTED", "looked_at"]

EXPECTED = {
    "sammed2d": "images/<case>_<slice>.png with masks/<case>_<slice>_<label>_<000>.png "
    "(or SA-Med2D-20M's image2label JSON)",
    "masks2d": "X/<stem>.png beside X_mask/<stem>_<target>.png (BiomedParse), the modality a "
    "word of the stem or ?modality=",
    "nifti": "imagesTr/ and labelsTr/ NIfTI pairs of one name, or label maps that classes.json "
    "('applies_to') names, each on one image's grid; value names from classes.json, "
    "dataset.json or ?labels=1:name,2:name",
    "dicomseg": "DICOM series with a DICOM SEG object whose frames lie on a series' grid",
    "coco": "a COCO detection JSON (images, annotations with bbox, categories) and its images "
    "under ?images=",
    "boxcsv": "a CSV of boxes, one row per box (image, label, corners or x/y/w/h; ?columns=), "
    "and its images under ?images=",
}
_SHOWN = 3
_COUNTED = 10_000  # enough to say how much is there without walking 20 M files


def looked_at(kind: str, path: Path) -> str:
    """What a source of ``kind`` at ``path`` held and what the kind expects, in one clause."""
    expected = f"{kind} expects {EXPECTED.get(kind, 'its own layout')}"
    if path.is_file():
        return f"looked at '{path}'; {expected}"
    files = (p for p in sorted_walk(path) if p.is_file())
    found = list(itertools.islice(files, _COUNTED))
    count = f"{len(found)}+" if len(found) == _COUNTED else str(len(found))
    shown = ", ".join(p.relative_to(path).as_posix() for p in _examples(found))
    more = ", ..." if len(found) > _SHOWN else ""
    listing = f" ({shown}{more})" if found else ""
    return f"looked at {count} files under '{path}'{listing}; {expected}"


def _examples(found: list[Path]) -> list[Path]:
    """A few files, from different folders first (one of each kind tells more)."""
    firsts = list({p.parent: p for p in reversed(found)}.values())[::-1]
    rest = [p for p in found if p not in firsts]
    return (firsts + rest)[:_SHOWN]


def sorted_walk(folder: Path):
    """Files and folders under ``folder``, depth first, each level sorted (a stable listing)."""
    for entry in sorted(folder.iterdir()):
        yield entry
        if entry.is_dir() and not entry.is_symlink():
            yield from sorted_walk(entry)
