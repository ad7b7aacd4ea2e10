"""A build's units of work: what one worker process reads, reduces to boxes and writes.

The plan (`plan_units`) lists the units from the sources' layout alone, in a fixed order that
depends on the sources and nothing else (not on the number of workers or shards):

- 2D sources (SA-Med2D, BiomedParse): runs of `CHUNK_2D` images with their mask files;
- NIfTI sources: one volume (image + label map) each;
- every other kind (DICOM + SEG, box files): the whole source as one unit.

`run_unit` does one unit in a worker process: it reads the masks, keeps the images with
boxes (or drawn as negatives), writes their PNGs into the unit's own staging folder and
returns the records as plain JSON-ready dicts, which the builder journals in plan order.
"""

from __future__ import annotations

import hashlib
import os
import random
import resource
import shutil
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trainer.data.boxes import PixelBox, Region, regions_of
from trainer.data.conversations import Facts
from trainer.data.result import BuildSettings, ImageRecord
from trainer.data.sources import (
    ImageFiles,
    SourceImage,
    SourceReport,
    SourceSpec,
    masks2d_files,
    sammed2d_files,
)

__all__ = [
    "CHUNK_2D",
    "Unit",
    "UnitOutput",
    "WorkerDied",
    "WorkerPool",
    "plan_digest",
    "plan_units",
    "record_from_dict",
    "record_to_dict",
    "run_unit",
    "start_worker",
]

# 2D images per unit: enough to hide the cost of sending a unit to a worker, few enough that
# a killed build redoes little and the last unit does not keep one core busy alone for long.
CHUNK_2D = 16
# Jobs sent ahead per worker: enough to keep every worker busy while the oldest finishes.
_AHEAD_PER_WORKER = 4


@dataclass(frozen=True)
class Unit:
    """One piece of work: ``files`` (2D images), ``pair`` (a NIfTI volume), or the whole
    source (neither)."""

    source: int  # index into the build's sources
    files: tuple[ImageFiles, ...] = ()
    pair: tuple | None = None


@dataclass
class UnitOutput:
    """What a worker returns for a unit (all of it small: no pixels)."""

    index: int
    source: int
    records: list[dict[str, Any]]
    skipped: dict[str, int]
    notes: list[str]
    peak_rss_kb: int  # of the worker process so far


# -- planning (main process) ----------------------------------------------------------------


def plan_units(specs: Sequence[SourceSpec], reports: Sequence[SourceReport]) -> list[Unit]:
    """Every unit of every source, in build order; what the layout alone rules out (a mask
    without an image, a label map without class names) is counted in ``reports``."""
    units: list[Unit] = []
    for index, (spec, report) in enumerate(zip(specs, reports, strict=True)):
        if spec.kind in ("sammed2d", "masks2d"):
            lister = sammed2d_files if spec.kind == "sammed2d" else masks2d_files
            units.extend(Unit(index, files=run) for run in _runs(lister(spec, report)))
        elif spec.kind == "nifti":
            from trainer.data.volumes import nifti_pairs

            units.extend(Unit(index, pair=pair) for pair in nifti_pairs(spec, report))
        else:
            units.append(Unit(index))
    return units


def plan_digest(units: Sequence[Unit]) -> str:
    """A hash of the plan's file names (not their folders, which may differ between the
    machines that build shards): a resumed build or a shard of another plan is not taken for
    this one."""
    digest = hashlib.sha256()
    for unit in units:
        names: list = [unit.source]
        for files in unit.files:
            names += [
                files.name,
                os.path.basename(files.image),
                *(f"{m[0]}|{m[1]}|{os.path.basename(m[2])}" for m in files.masks),
            ]
        if unit.pair is not None:
            names += [unit.pair[0].name, unit.pair[1].name, sorted(unit.pair[2].items())]
        digest.update(repr(names).encode())
    return digest.hexdigest()


def _runs(files: Iterator[ImageFiles]) -> Iterator[tuple[ImageFiles, ...]]:
    run: list[ImageFiles] = []
    for item in files:
        run.append(item)
        if len(run) == CHUNK_2D:
            yield tuple(run)
            run = []
    if run:
        yield tuple(run)


# -- doing a unit (worker process) ----------------------------------------------------------

_WORKER: dict[str, Any] = {}


def start_worker(
    specs: Sequence[SourceSpec], settings: BuildSettings, staging: Path | None
) -> None:
    """What every unit of this build needs, given once per worker process."""
    _WORKER.update(specs=list(specs), settings=settings, staging=staging)
    import SimpleITK as sitk

    # The worker processes are the parallelism: ITK's own threads (connected components)
    # would only compete with the other workers for the same cores.
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)


class WorkerPool:
    """``workers`` processes (or this one, for 1) that map jobs in order, a few at a time, so
    neither the jobs nor the results of a whole build ever wait in memory.

    A worker that dies (killed, out of memory) fails the map with `WorkerDied` rather than
    leaving it waiting for a result that never comes.
    """

    def __init__(self, workers: int, *start: Any) -> None:
        self.workers = workers
        self.start = start
        self.pool = None

    def __enter__(self) -> WorkerPool:
        if self.workers == 1:
            start_worker(*self.start)
            return self
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # forkserver: workers start from a clean process, not a copy of this one (which may
        # hold threads, ITK's for one, that fork does not copy safely).
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["trainer.data.units", "trainer.data.compose"])
        self.pool = ProcessPoolExecutor(
            self.workers, mp_context=context, initializer=start_worker, initargs=self.start
        )
        return self

    def map(self, function: Callable[[Any], Any], jobs: Iterable[Any]) -> Iterator[Any]:
        """``function(job)`` for each job, in the jobs' order."""
        if self.pool is None:
            yield from map(function, jobs)
            return
        from concurrent.futures.process import BrokenProcessPool

        pending: deque = deque()
        try:
            for job in jobs:
                pending.append(self.pool.submit(function, job))
                if len(pending) >= self.workers * _AHEAD_PER_WORKER:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BrokenProcessPool as exc:
            raise WorkerDied(str(exc)) from exc

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            # Units under way finish (their files land in staging, which a resume drops).
            self.pool.shutdown(wait=True, cancel_futures=True)


class WorkerDied(OSError):
    """A worker process ended without finishing its job (killed, or out of memory)."""


def run_unit(job: tuple[int, Unit]) -> UnitOutput:
    """Unit ``index``: its kept images written to ``staging/<index>/``, its records returned."""
    index, unit = job
    spec: SourceSpec = _WORKER["specs"][unit.source]
    settings: BuildSettings = _WORKER["settings"]
    folder = Path(_WORKER["staging"]) / str(index)
    if folder.exists():  # left by a build that was killed while doing this unit
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    report = SourceReport(spec.text, spec.kind, spec.dataset, {})
    records: list[dict[str, Any]] = []
    names: set[str] = set()
    for image in _unit_images(spec, unit, settings, report):
        record = _record(image, unit.source, settings, folder, names, report)
        if record is not None:
            records.append(record_to_dict(record))
    # By name within a unit, as builds before units sorted all their images (a volume's
    # sagittal, coronal, then axial slices), so a one-volume build keeps its old order.
    records.sort(key=lambda r: r["facts"]["name"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return UnitOutput(index, unit.source, records, dict(report.skipped), report.notes, peak)


def _unit_images(
    spec: SourceSpec, unit: Unit, settings: BuildSettings, report: SourceReport
) -> Iterator[SourceImage]:
    if unit.files:
        return (files.load() for files in unit.files)
    if unit.pair is not None:
        from trainer.data.volumes import nifti_pair_images

        return nifti_pair_images(spec, unit.pair, settings.planes, settings.slice_step, report)
    return _whole_source(spec, settings, report)


def _whole_source(
    spec: SourceSpec, settings: BuildSettings, report: SourceReport
) -> Iterator[SourceImage]:
    if spec.kind in ("coco", "boxcsv"):
        from trainer.data.box_sources import box_images

        return box_images(spec, report)
    from trainer.data import volumes

    reader = volumes.nifti_images if spec.kind == "nifti" else volumes.dicomseg_images
    return reader(spec, settings.planes, settings.slice_step, report)


def _record(
    image: SourceImage,
    source: int,
    settings: BuildSettings,
    folder: Path,
    names: set[str],
    report: SourceReport,
) -> ImageRecord | None:
    """Boxes of the image's masks, the image written to disk; None for an image skipped."""
    regions = regions_of(image.masks, settings.min_component_px)
    reason = _skip_reason(image, bool(regions), settings)
    if reason:
        report.skip(reason)
        return None
    if image.name in names:
        raise ValueError(f"Unable to build as two images are both named {image.name!r}")
    names.add(image.name)
    pixels = image.render()
    _write_png(folder / image.name, pixels)
    height, width = pixels.shape[:2]
    facts = Facts(
        image.name,
        image.modality,
        image.plane,
        image.body_part,
        width,
        height,
        tuple(regions),
        image.absent,
    )
    return ImageRecord(facts, image.dataset, image.case, image.patient, source)


def _skip_reason(image: SourceImage, has_regions: bool, settings: BuildSettings) -> str | None:
    """Why an image is left out, or None to keep it. An image without objects is kept, as a
    negative, with probability ``negative_rate`` (drawn from its name: deterministic)."""
    if has_regions:
        return None
    if image.masks:
        return f"every object under {settings.min_component_px} px"
    if not image.absent:
        return "no object"
    if random.Random(f"{settings.seed}|keep|{image.name}").random() >= settings.negative_rate:
        return "no object, not drawn as a negative"
    return None


def _write_png(path: Path, pixels) -> None:
    from PIL import Image

    # Pillow writes no time stamp, so the same pixels give the same bytes.
    Image.fromarray(pixels).save(path, format="PNG", compress_level=3)


# -- records as JSON ------------------------------------------------------------------------


def record_to_dict(record: ImageRecord) -> dict[str, Any]:
    """An `ImageRecord` as JSON-ready data (`record_from_dict` gives it back, equal)."""
    data = asdict(record)
    data["facts"]["regions"] = [_region_to_dict(r) for r in record.facts.regions]
    return data


def _region_to_dict(region: Region) -> dict[str, Any]:
    return {
        "label": region.label,
        "instance": region.instance,
        "components": [_box_list(b) for b in region.components],
        "union": _box_list(region.union),
        "pixels": region.pixels,
    }


def _box_list(box: PixelBox) -> list[int]:
    return [box.x1, box.y1, box.x2, box.y2]


def record_from_dict(data: dict[str, Any]) -> ImageRecord:
    facts = dict(data["facts"])
    facts["regions"] = tuple(
        Region(
            r["label"],
            r["instance"],
            tuple(PixelBox(*b) for b in r["components"]),
            PixelBox(*r["union"]),
            r["pixels"],
        )
        for r in facts["regions"]
    )
    facts["absent"] = tuple(facts["absent"])
    return ImageRecord(
        Facts(**facts), data["dataset"], data["case"], data["patient"], data["source"]
    )
