"""The last step of a build: journaled records → split → conversations → files and card.

It reads the records journal twice, one line at a time, and never holds the records, items
or turns of the whole build: the first pass collects the split groups (cases or patients)
and what each source gave, the second writes every item as soon as it is composed, into the
Med-GRIT JSON lists and their JSON-lines twins, while the data card counts.

The journal is what the worker processes produced, in plan order (`trainer.data.units`); a
build on one machine, with any number of workers, and the merge of its shards read the same
journal lines in the same order, so they write the same bytes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from trainer.data import card
from trainer.data.conversations import Turn, first_question, test_turns, train_turns
from trainer.data.result import (
    TEST_FILES,
    TRAIN_FILE,
    BuildSettings,
    ImageRecord,
)
from trainer.data.sources import SourceReport
from trainer.data.units import WorkerPool, record_from_dict

__all__ = [
    "JSONL_SUFFIX",
    "MAX_TURNS_PER_ITEM",
    "compose_unit",
    "finish",
    "journal_lines",
    "split_groups",
]

# Turns per training item: long enough for a real multi-turn mix, short enough for 2048 tokens.
MAX_TURNS_PER_ITEM = 8
# Each Med-GRIT list X.json also as X.jsonl, one item a line (Hugging Face `datasets` streams it).
JSONL_SUFFIX = ".jsonl"


def journal_lines(journals: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """The journaled units of ``journals``, one after the other."""
    for journal in journals:
        with open(journal, encoding="utf-8") as lines:
            for line in lines:
                yield json.loads(line)


def split_groups(groups: dict[str, set[str]], settings: BuildSettings) -> set[str]:
    """The split groups (dataset → its cases or patients) that go to test.

    Within each dataset: a seeded shuffle of its groups, the first ``round(test_fraction ×
    n)`` of them, at least one and at most n − 1 when both are possible. Per dataset, so a
    small dataset is not left out of the test files by chance; a dataset of one case stays in
    train.
    """
    test: set[str] = set()
    for dataset, found in sorted(groups.items()):
        ordered = sorted(found)
        count = round(settings.test_fraction * len(ordered))
        if len(ordered) > 1 and 0 < settings.test_fraction < 1:
            count = min(max(count, 1), len(ordered) - 1)
        random.Random(f"{settings.seed}|split|{dataset}").shuffle(ordered)
        test.update(ordered[:count])
    return test


def finish(
    out: Path,
    journals: list[Path],
    reports: list[SourceReport],
    settings: BuildSettings,
    command: str,
    pool: WorkerPool,
) -> int:
    """Write the lists and the card into ``out`` from the journals; the number of images.

    ``reports`` hold what planning counted; the journal's per-unit counts are added here.
    The conversations are composed by ``pool``'s workers, a unit at a time, in order.

    Raises:
        ValueError: no source gave an image with a usable label.
    """
    test_groups = _first_pass(journals, reports, settings)
    if not any(report.images for report in reports):
        raise ValueError(_no_usable_labels(reports))
    jobs = (
        (unit["records"], [_group(d) in test_groups for d in unit["records"]], settings)
        for unit in journal_lines(journals)
    )
    stats = card.CardStats()
    with _Lists(out) as lists:
        # Two readers of the journal in step: the jobs run a few units ahead of this one.
        for unit, composed in zip(
            journal_lines(journals), pool.map(compose_unit, jobs), strict=True
        ):
            for data, entries in zip(unit["records"], composed, strict=True):
                record = record_from_dict(data)
                for file, text, _, _ in entries:
                    lists.write(file, text)
                stats.add(record, _group(data) in test_groups, entries)
    card.write_card(out, card.card_data(stats, reports, settings, command))
    return sum(report.images for report in reports)


def _group(data: dict[str, Any]) -> str:
    return f"{data['dataset']}/{data['patient']}"


def compose_unit(job: tuple[list[dict], list[bool], BuildSettings]) -> list[list[tuple]]:
    """Per record of a unit: (file, item as JSON text, conversations, turn kinds) of each of
    its items (run in a worker process)."""
    records, tests, settings = job
    return [
        [
            (
                file,
                json.dumps(item, ensure_ascii=False),
                len(item["conversations"]),
                [t.task + ("-negative" if t.negative else "") for t in turns],
            )
            for file, item, turns in _compose(record_from_dict(data), test, settings)
        ]
        for data, test in zip(records, tests, strict=True)
    ]


def _first_pass(
    journals: list[Path], reports: list[SourceReport], settings: BuildSettings
) -> set[str]:
    groups: dict[str, set[str]] = {}
    for unit in journal_lines(journals):
        report = reports[unit["source"]]
        report.images += len(unit["records"])
        for reason, count in unit["skipped"].items():
            report.skip(reason, count)
        report.notes.extend(unit["notes"])
        for data in unit["records"]:
            groups.setdefault(data["dataset"], set()).add(_group(data))
    return split_groups(groups, settings)


def _no_usable_labels(sources: list[SourceReport]) -> str:
    """Where no usable label was found, and why each source's images were left out."""
    parts = []
    for report in sources:
        skipped = sorted(report.skipped.items(), key=lambda kv: (-kv[1], kv[0]))
        reasons = "; ".join(f"{reason} ({count})" for reason, count in skipped[:3])
        more = f"; {len(skipped) - 3} more reasons" if len(skipped) > 3 else ""
        # Nothing found at all: the layout is not what the kind reads, so say what it read.
        where = f"; {_looked_at(report.text)}" if not report.images and not skipped else ""
        parts.append(
            f"'{report.text}' ({report.kind}: {reasons or 'no images found'}{more}{where})"
        )
    return (
        f"Unable to build a dataset as no usable labels were found in {', '.join(parts)}; "
        "nothing was written"
    )


def _looked_at(text: str) -> str:
    from trainer.data.layouts import looked_at
    from trainer.data.sources import parse_source

    spec = parse_source(text)
    return looked_at(spec.kind, spec.path)


def _compose(
    record: ImageRecord, test: bool, settings: BuildSettings
) -> list[tuple[str, dict, list[Turn]]]:
    """(file, item, its turns) of one image, in the order they are written."""
    facts = record.facts
    rng = random.Random(f"{settings.seed}|text|{facts.name}")
    composed = []
    if test:
        for task, task_turns in test_turns(facts, rng, settings.negative_rate).items():
            for turn in task_turns:
                composed.append((TEST_FILES[task], _item(facts.name, [turn]), [turn]))
        return composed
    mixed = train_turns(facts, rng, settings.negative_rate)
    for start in range(0, len(mixed), MAX_TURNS_PER_ITEM):
        turns = mixed[start : start + MAX_TURNS_PER_ITEM]
        composed.append((TRAIN_FILE, _item(facts.name, turns), turns))
    return composed


def _item(image_name: str, turns: list[Turn]) -> dict:
    conversations = [[t.question, t.answer] for t in turns]
    conversations[0][0] = first_question(image_name, conversations[0][0])
    return {"id": Path(image_name).stem, "conversations": conversations}


class _Lists:
    """The five Med-GRIT lists, written item by item (as `trainer.medgrit.write_items` writes
    them: "[", one item a line, "]"), each with its JSON-lines twin."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.names = [TRAIN_FILE, *TEST_FILES.values()]
        self.stack = ExitStack()
        self.json: dict[str, IO[str]] = {}
        self.jsonl: dict[str, IO[str]] = {}
        self.count: dict[str, int] = dict.fromkeys(self.names, 0)

    def __enter__(self) -> _Lists:
        for name in self.names:
            self.json[name] = self._open(name)
            self.jsonl[name] = self._open(Path(name).stem + JSONL_SUFFIX)
            self.json[name].write("[")
        return self

    def _open(self, name: str) -> IO[str]:
        return self.stack.enter_context(open(self.out / name, "w", encoding="utf-8"))

    def write(self, name: str, text: str) -> None:
        """One item, given as its JSON text."""
        self.json[name].write((",\n" if self.count[name] else "\n") + text)
        self.jsonl[name].write(text + "\n")
        self.count[name] += 1

    def __exit__(self, *exc) -> None:
        for name in self.names:
            self.json[name].write("\n]\n")
            if not self.count[name]:
                card.warn_empty(name)
        self.stack.close()
