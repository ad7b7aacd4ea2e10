"""What a data build is asked for and what it produced: its settings, records and split.

The builder (`trainer.data.build`) fills these in and the data card (`trainer.data.card`)
reads them; they live here so neither of the two has to import the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from trainer.data.conversations import Facts
from trainer.data.sources import SourceReport

__all__ = [
    "PLANES",
    "TEST_FILES",
    "TRAIN_FILE",
    "BuildResult",
    "BuildSettings",
    "ImageRecord",
    "group_of",
]

TEST_FILES = {
    "VG": "test_vg.json",
    "RO": "test_roc.json",
    "GC": "test_rc.json",
    "MII": "test_mia.json",
}
TRAIN_FILE = "train.json"
PLANES = ("axial", "coronal", "sagittal")


@dataclass(frozen=True)
class BuildSettings:
    """The knobs of a build (all of them recorded in the data card)."""

    seed: int = 0
    negative_rate: float = 0.2
    test_fraction: float = 0.2
    min_component_px: int = 16
    planes: tuple[str, ...] = PLANES
    slice_step: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.negative_rate <= 1.0:
            raise ValueError(
                f"Unable to build as negative_rate {self.negative_rate!r} is not in 0..1"
            )
        if not 0.0 <= self.test_fraction <= 1.0:
            raise ValueError(
                f"Unable to build as test_fraction {self.test_fraction!r} is not in 0..1"
            )
        if self.min_component_px < 1 or self.slice_step < 1:
            raise ValueError("Unable to build as min_component_px and slice_step must be >= 1")
        unknown = sorted(set(self.planes) - set(PLANES))
        if unknown or not self.planes:
            raise ValueError(
                f"Unable to build as planes {list(self.planes)} are not some of {list(PLANES)}"
            )


@dataclass(frozen=True)
class ImageRecord:
    """One written image: where it came from and what the text may say about it."""

    facts: Facts
    dataset: str
    case: str
    patient: str
    source: int  # index into the build's sources


@dataclass
class BuildResult:
    """Where a build wrote, how many images, what each source gave, and what it cost."""

    out: Path
    images: int = 0
    sources: list[SourceReport] = field(default_factory=list)
    peak_worker_rss_kb: int = 0
    seconds: float = 0.0


def group_of(record: ImageRecord) -> str:
    """The split unit of an image: its dataset and patient (or case)."""
    return f"{record.dataset}/{record.patient}"
