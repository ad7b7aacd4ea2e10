"""``birdview-train build-data``: sources → rendered images + Med-GRIT JSON + data card.

The steps, each deterministic under the seed:

1. every source yields images with masks (`trainer.data.sources`, `trainer.data.volumes`);
   each kept image is written to ``images/`` and reduced to its boxes (`trainer.data.boxes`);
2. cases (patients where known) are split into train and test within each dataset, so no
   case is in both;
3. each image gets its conversations (`trainer.data.conversations`) from a random generator
   seeded by the seed and the image's name alone, so adding a source changes nothing else;
4. ``train.json``, ``test_vg.json``, ``test_roc.json``, ``test_rc.json``,
   ``test_mia.json``, then ``data_card.json`` and ``DATA_CARD.md``.

Everything is written into a hidden sibling of ``--out`` that takes its name only once the
build is complete (`trainer.data.journal`): a build that fails (no usable label, a broken
source) leaves nothing behind, and the same command runs again as soon as its cause is fixed;
a build that was killed resumes where it stopped.

Scale: the sources are cut into units (`trainer.data.units`) that worker processes do in
parallel, each writing its images and returning its records, journaled in plan order; the
lists are then written from the journal one item at a time (`trainer.data.compose`). Memory
stays bounded by a unit, not the dataset (the plan holds file names only), and the output's
bytes do not depend on the number of workers. ``shard=(i, n)`` builds the i-th of n
contiguous runs of units into a shard folder; `trainer.data.shards.merge_shards` joins the
shards into the same files one build would write.

Images without any object (slices of a volume where no label is present) are kept with
probability ``negative_rate`` and then carry one not-present question; images with objects get
one with the same probability, asking for a label known to be absent from them.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from trainer.data.compose import MAX_TURNS_PER_ITEM, finish, split_groups
from trainer.data.journal import JOURNAL, WorkFolder, check_out
from trainer.data.result import (
    TEST_FILES,
    TRAIN_FILE,
    BuildResult,
    BuildSettings,
    ImageRecord,
    group_of,
)
from trainer.data.sources import SourceReport, parse_source, read_licence
from trainer.data.units import (
    Unit,
    WorkerDied,
    WorkerPool,
    plan_digest,
    plan_units,
    run_unit,
)

__all__ = [
    "MAX_TURNS_PER_ITEM",
    "SHARD_FILE",
    "TEST_FILES",
    "TRAIN_FILE",
    "BuildResult",
    "BuildSettings",
    "ImageRecord",
    "build_dataset",
    "default_workers",
    "group_of",
    "split_patients",
]

logger = logging.getLogger(__name__)

SHARD_FILE = "shard.json"


def default_workers() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def build_dataset(
    sources: Sequence[str],
    out: str | os.PathLike,
    settings: BuildSettings,
    *,
    command: str = "",
    workers: int | None = None,
    shard: tuple[int, int] | None = None,
) -> BuildResult:
    """Build the dataset from ``sources`` (``[KIND:]PATH[?options]``) into ``out``, with
    ``workers`` processes (default: every core); ``shard=(i, n)`` builds only shard i of n.

    Raises:
        ValueError: a source is unusable, ``out`` is a file or a folder that is not empty, two
            images get one name, or no source gave an image with a usable label.
    """
    specs = [parse_source(text) for text in sources]  # every source checked before writing
    target = Path(out)
    check_out(target)
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ValueError(f"Unable to build with {workers} workers; give 1 or more")
    started = time.monotonic()
    reports = [SourceReport(s.text, s.kind, s.dataset, read_licence(s)) for s in specs]
    units = plan_units(specs, reports)
    first, last = shard_range(len(units), shard)
    state = build_state(sources, settings, units)
    work = WorkFolder(target)
    start = work.open({**state, "shard": list(shard or (0, 1))}, first)
    result = BuildResult(target, sources=reports)
    workers = max(1, min(workers, last - start))
    try:
        with WorkerPool(workers, specs, settings, work.staging) as pool:
            result.peak_worker_rss_kb = _run(units, start, last, work, pool)
            if shard is None:
                journals = [work.journal]
                result.images = finish(work.path, journals, reports, settings, command, pool)
        if shard is None:
            work.complete()
        else:
            _write_shard(work, state, shard, (first, last), reports, command)
            work.complete(keep=(JOURNAL,))
    except KeyboardInterrupt:
        work.release()  # the journal stays: the same command resumes
        raise
    except WorkerDied:
        work.release()
        raise WorkerDied(
            f"Unable to finish the build as a worker process died (killed, or out of memory: "
            f"try fewer --workers); the finished units are kept in '{work.path}' and the same "
            "command goes on from them"
        ) from None
    except BaseException:
        work.discard()
        raise
    result.seconds = time.monotonic() - started
    return result


def shard_range(units: int, shard: tuple[int, int] | None) -> tuple[int, int]:
    """Units [first, last) of shard i of n: contiguous runs of (nearly) equal length."""
    if shard is None:
        return 0, units
    index, count = shard
    if not 0 <= index < count:
        raise ValueError(f"Unable to build shard {index}/{count}; give i/N with 0 <= i < N")
    return index * units // count, (index + 1) * units // count


def build_state(
    sources: Sequence[str], settings: BuildSettings, units: Sequence[Unit]
) -> dict[str, Any]:
    """What makes two builds (or shards) the same build: sources, settings and the plan."""
    settings_data = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()}
    return {
        "version": 1,
        "sources": list(sources),
        "settings": settings_data,
        "units": len(units),
        "plan": plan_digest(units),
    }


def _run(units: list[Unit], start: int, last: int, work: WorkFolder, pool: WorkerPool) -> int:
    """Units [start, last) done and committed in order; the largest worker's peak RSS (kB)."""
    peak = 0
    for output in pool.map(run_unit, ((index, units[index]) for index in range(start, last))):
        work.commit(output)
        peak = max(peak, output.peak_rss_kb)
    return peak


def _write_shard(
    work: WorkFolder,
    state: dict[str, Any],
    shard: tuple[int, int],
    units: tuple[int, int],
    reports: list[SourceReport],
    command: str,
) -> None:
    import json

    data = {
        "state": state,
        "shard": list(shard),
        "units": list(units),
        "command": command,
        "reports": [_report_data(r) for r in reports],
    }
    (work.path / SHARD_FILE).write_text(json.dumps(data, indent=1), encoding="utf-8")


def _report_data(report: SourceReport) -> dict[str, Any]:
    return {
        "text": report.text,
        "kind": report.kind,
        "dataset": report.dataset,
        "licence": report.licence,
        "skipped": dict(report.skipped),
        "notes": list(report.notes),
    }


def split_patients(records: Sequence[ImageRecord], settings: BuildSettings) -> set[str]:
    """The split groups (cases, or patients where known) of ``records`` that go to test
    (`trainer.data.compose.split_groups`)."""
    groups: dict[str, set[str]] = {}
    for record in records:
        groups.setdefault(record.dataset, set()).add(group_of(record))
    return split_groups(groups, settings)
