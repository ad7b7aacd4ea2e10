"""Joining the shards of a build (``build-data --shard i/N``) into one dataset.

Each shard folder holds its images, its records journal and ``shard.json`` (what was built:
sources, settings, the number of units, the shard's run of units, what planning counted, the
command). `merge_shards` checks that the shards are all of one build and cover it exactly,
links (or copies) their images into a hidden folder beside ``out``, and writes the lists and
the card from their journals in shard order: the same bytes as one build of the same command.
The shards are left as they were.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trainer.data.build import SHARD_FILE, default_workers
from trainer.data.compose import finish
from trainer.data.journal import JOURNAL, WorkFolder, check_out
from trainer.data.result import BuildResult, BuildSettings
from trainer.data.sources import SourceReport
from trainer.data.units import WorkerPool

__all__ = ["merge_shards", "with_out"]


def merge_shards(
    shards: Sequence[str | os.PathLike], out: str | os.PathLike, *, workers: int | None = None
) -> BuildResult:
    """The dataset of the complete set of ``shards`` (any order), written into ``out`` with
    ``workers`` processes composing the conversations (default: every core).

    Raises:
        ValueError: a folder is not a finished shard, the shards are of different builds, one
            is missing or given twice, ``out`` is not empty, or two images share a name.
    """
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ValueError(f"Unable to merge with {workers} workers; give 1 or more")
    found = sorted((_read_shard(Path(s)) for s in shards), key=lambda d: d["shard"][0])
    _check_complete(found)
    target = Path(out)
    check_out(target)
    first = found[0]
    settings_data = dict(first["state"]["settings"])
    settings_data["planes"] = tuple(settings_data["planes"])
    settings = BuildSettings(**settings_data)
    reports = [_report(data) for data in first["reports"]]
    work = WorkFolder(target)
    # A merge killed half-way is simply done again (it only links files).
    work.open({"merge": [str(d["folder"].resolve()) for d in found]}, 0, resume=False)
    try:
        for data in found:
            _link_images(data["folder"] / "images", work.images)
        journals = [data["folder"] / JOURNAL for data in found]
        command = with_out(first["command"], target)
        with WorkerPool(workers, [], settings, None) as pool:
            images = finish(work.path, journals, reports, settings, command, pool)
        work.complete()
    except BaseException:
        work.discard()
        raise
    return BuildResult(target, images=images, sources=reports)


def with_out(command: str, out: Path) -> str:
    """The shard's command with ``--out`` naming the merged folder: the command that builds
    the merged dataset in one go (the card shows it)."""
    tokens = shlex.split(command)
    if "--out" in tokens[:-1]:
        tokens[tokens.index("--out") + 1] = str(out)
        return shlex.join(tokens)
    return command


def _read_shard(folder: Path) -> dict[str, Any]:
    meta = folder / SHARD_FILE
    if not meta.is_file() or not (folder / JOURNAL).is_file():
        raise ValueError(
            f"Unable to merge '{folder}' as it is not a finished shard (no {SHARD_FILE} and "
            f"{JOURNAL}; 'build-data --shard i/N' writes them when the shard is complete)"
        )
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(
            f"Unable to merge '{folder}' as {SHARD_FILE} is not JSON ({exc})"
        ) from None
    data["folder"] = folder
    return data


def _check_complete(found: list[dict[str, Any]]) -> None:
    state = found[0]["state"]
    for data in found[1:]:
        if data["state"] != state:
            raise ValueError(
                f"Unable to merge '{data['folder']}' with '{found[0]['folder']}' as they are "
                "shards of different builds (sources, settings or files differ)"
            )
    count = found[0]["shard"][1]
    indexes = [data["shard"][0] for data in found]
    if indexes != list(range(count)) or any(d["shard"][1] != count for d in found):
        missing = sorted(set(range(count)) - set(indexes))
        twice = sorted({i for i in indexes if indexes.count(i) > 1})
        raise ValueError(
            f"Unable to merge as the shards do not make the whole build of {count}: "
            f"missing {missing or 'none'}, given twice {twice or 'none'}"
        )


def _link_images(source: Path, target: Path) -> None:
    with os.scandir(source) as entries:
        for entry in entries:
            destination = target / entry.name
            if destination.exists():
                raise ValueError(f"Unable to merge as two images are both named {entry.name!r}")
            try:
                os.link(entry.path, destination)  # same file system: no copy
            except OSError:
                shutil.copy2(entry.path, destination)


def _report(data: dict[str, Any]) -> SourceReport:
    report = SourceReport(data["text"], data["kind"], data["dataset"], data["licence"])
    for reason, count in data["skipped"].items():
        report.skip(reason, count)
    report.notes.extend(data["notes"])
    return report
