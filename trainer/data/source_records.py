"""What a source adapter yields (`SourceImage` with its `LabelMask`s), the parsed SOURCE
argument (`SourceSpec`) and what the data card says about a source (`SourceReport`).

The adapters live beside this module (`trainer.data.sammed2d`, `trainer.data.masks2d`,
`trainer.data.volumes`, `trainer.data.box_sources`); `trainer.data.sources` parses the
argument and re-exports these names.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["LabelMask", "SourceImage", "SourceReport", "SourceSpec", "clean_part"]


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


def clean_part(text: str) -> str:
    """A piece of a file name: letters, digits, "_", "." and single "-" (the parts of an
    SA-Med2D name are separated by "--")."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_.-")
    return re.sub(r"-{2,}", "-", cleaned) or "unnamed"
