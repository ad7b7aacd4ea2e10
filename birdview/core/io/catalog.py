"""What a scan of a path finds: series ready to load, and the files that could not be read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from birdview.core.errors import LoadCancelled

__all__ = ["Catalog", "ProgressFn", "ReadProblem", "SeriesEntry", "CancelFn", "check_cancel"]

ProgressFn = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while a load runs."""

CancelFn = Callable[[], bool]
"""Returns True when the caller wants the running scan or load to stop."""


@dataclass(frozen=True)
class ReadProblem:
    """A file that could not be read, and why (the message of its `VolumeReadError`)."""

    path: str
    message: str


@dataclass(frozen=True)
class SeriesEntry:
    """One loadable series, found by a scan; `birdview.core.io.load` turns it into a Volume.

    ``patient``, ``study`` and ``description`` are display strings for the study browser
    (they may hold patient identity: show them, never log them). ``reader_data`` belongs to the
    reader of ``kind`` and is opaque to everyone else.
    """

    kind: str  # "dicom", "nifti" or "raster"
    key: str  # stable and patient-free (a hash)
    patient: str
    study: str
    description: str
    modality: str
    n_slices: int
    paths: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    series_number: int | None = None
    reader_data: Any = field(default=None, compare=False, repr=False)


@dataclass
class Catalog:
    """Everything found under one path.

    ``keep_alive`` holds resources the entries depend on (e.g. the temporary folder a .zip was
    extracted to); it is released when the catalog is garbage collected.
    """

    root: str
    entries: list[SeriesEntry] = field(default_factory=list)
    problems: list[ReadProblem] = field(default_factory=list)
    keep_alive: list[Any] = field(default_factory=list, repr=False)


def check_cancel(cancel: CancelFn | None) -> None:
    """Raise `LoadCancelled` if the caller asked to stop."""
    if cancel is not None and cancel():
        raise LoadCancelled("loading was cancelled")
