"""The data card: what a build holds and where it came from, as JSON and as Markdown.

``data_card.json`` is for programs, ``DATA_CARD.md`` for people; both carry the same numbers:
items and turns per file, turns per task, images per modality (modalities Med-GRIT lacks
marked, and listed under ``extra_modalities``), images and boxes per label, split sizes, each
source with its licence and what was skipped, the settings, the seed and the command.

``extra_modalities`` is what ``birdview-train validate --data-card`` reads
(`trainer.medgrit.card_extra_modalities`), so a build validates without problems.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

from trainer.data import conversations
from trainer.data.names import readable
from trainer.data.result import TEST_FILES, TRAIN_FILE, BuildSettings, ImageRecord, group_of

__all__ = ["CardStats", "card_data", "warn_empty", "write_card"]

logger = logging.getLogger(__name__)

CONVENTIONS = {
    "format": "Med-GRIT-270k JSON (docs/MEDGRIT.md): [{id, conversations: [[q, a], ...]}], the "
    "first question starts 'Picture 1: <img>images/NAME.png</img>\\n'",
    "masks": "a mask's foreground: in label maps (NIfTI, DICOM SEG) the pixels of the label's "
    "value; in lossless 2D mask files (PNG, BMP, TIFF) every non-zero grey value; in 8-bit "
    "lossy 2D mask files (JPEG, JPEG 2000, WebP) the grey values above Otsu's threshold of the "
    "file's histogram, so compression ringing around edges is not foreground (a clean 0/255 "
    "mask reads the same either way)",
    "boxes": "<ref>label</ref><box>(x1,y1),(x2,y2)</box>, pixel edges on a 0-1000 grid relative "
    "to width/height (birdview.core.box_codecs 'medgrit'); one box per 8-connected component "
    "of at least min_component_px pixels; questions refer to the union box of one mask; box "
    "sources (COCO JSON, CSV) give each annotated box as one object, its corners rounded to the "
    "nearest pixel edge",
    "positions": "position words (upper/lower/left/right part, centre) describe the box centre's "
    "third of the IMAGE, never a patient side; in axial and coronal slices (radiological "
    "convention) image left is the patient's right",
    "negatives": "'Where is X?' answered as not present, X drawn from labels known to be absent: "
    "for label maps every class of the volume without a pixel in the slice; for SA-Med2D the "
    "labels of the same case's other slices; none for BiomedParse (its masks are task targets, "
    "not a complete annotation); for box sources (COCO JSON, CSV) every label of the file with "
    "no box in the image (such files annotate every label in every image they list; a CSV "
    "'No finding' row gives an image with none)",
    "split": "by case (patient where the source knows it): no case has images in both train and "
    "test",
    "planes": "3D volumes: axial (z), coronal (y), sagittal (x) slices of the canonical volume, "
    "rendered per volume 0.5-99.5 % -> 0-255 (birdview.core.model_input), resized to square "
    "pixels",
    "order": "items follow the sources in the order given, each source's files in sorted order "
    "(a volume's images by name: sagittal, coronal, then axial slices); the bytes do not "
    "depend on --workers, and the shards of --shard I/N joined by merge-data give the same "
    "files",
    "jsonl": "every list X.json also as X.jsonl, one item a line, the same items in the same "
    "order (Hugging Face datasets: load_dataset('json', data_files=..., streaming=True))",
}


# The question pools, shown in the card with their placeholders.
WORDINGS = {
    "VG": conversations.VG_QUESTIONS,
    "RO": conversations.ROC_QUESTIONS,
    "GC": conversations.RC_QUESTIONS,
    "MII": conversations.MIA_QUESTIONS,
}


class CardStats:
    """The card's numbers, counted one image at a time as the lists are written."""

    def __init__(self) -> None:
        self.files: dict[str, dict[str, int]] = {
            name: {"items": 0, "turns": 0} for name in (TRAIN_FILE, *TEST_FILES.values())
        }
        self.tasks: dict[str, Counter] = {"train": Counter(), "test": Counter()}
        self.modalities: dict[str, Counter] = defaultdict(Counter)
        self.label_images: Counter = Counter()
        self.label_boxes: Counter = Counter()
        self.groups: dict[str, set[str]] = {"train": set(), "test": set()}
        self.images: Counter = Counter()

    def add(self, record: ImageRecord, test: bool, items: list[tuple]) -> None:
        """One image: its record, its side of the split and its items, each as (file, text,
        conversations, turn kinds such as "VG" or "VG-negative")."""
        side = "test" if test else "train"
        for file, _, count, kinds in items:
            self.files[file]["items"] += 1
            self.files[file]["turns"] += count
            self.tasks[side].update(kinds)
        self.modalities[record.facts.modality][f"{side}_images"] += 1
        for label in {r.label for r in record.facts.regions}:
            self.label_images[label] += 1
        for region in record.facts.regions:
            self.label_boxes[region.label] += len(region.components)
        self.groups[side].add(group_of(record))
        self.images[side] += 1


def card_data(
    stats: CardStats, sources: list, settings: BuildSettings, command: str
) -> dict[str, Any]:
    """The card as a JSON-ready dict (keys sorted where order means nothing)."""
    from trainer.medgrit import MODALITIES

    return {
        "command": command,
        "seed": settings.seed,
        "settings": {
            k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()
        },
        "files": stats.files,
        "tasks": {side: dict(sorted(c.items())) for side, c in stats.tasks.items()},
        "modalities": _modalities(stats, MODALITIES),
        "extra_modalities": sorted(set(stats.modalities) - set(MODALITIES)),
        "labels": {
            label: {
                "name": readable(label),
                "images": stats.label_images[label],
                "boxes": stats.label_boxes[label],
            }
            for label in sorted(stats.label_images)
        },
        "split": {
            side: {
                "cases": len(stats.groups[side]),
                "images": stats.images[side],
                "case_list": sorted(stats.groups[side]),
            }
            for side in ("train", "test")
        },
        "sources": [_source(report) for report in sources],
        "conventions": CONVENTIONS,
    }


def _modalities(stats: CardStats, medgrit: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    return {
        key: {
            "train_images": c["train_images"],
            "test_images": c["test_images"],
            "in_medgrit": key in medgrit,
        }
        for key, c in sorted(stats.modalities.items())
    }


def warn_empty(name: str) -> None:
    logger.warning(
        "%s has no items: no dataset has a case for it (a dataset of one case stays in "
        "train); 'birdview-train validate' reports it as a problem",
        name,
    )


def _source(report) -> dict[str, Any]:
    return {
        "source": report.text,
        "kind": report.kind,
        "dataset": report.dataset,
        "licence": report.licence,
        "images": report.images,
        "skipped": dict(sorted(report.skipped.items())),
        "notes": list(report.notes),
    }


def write_card(out: Path, data: dict[str, Any]) -> None:
    """``data_card.json`` and ``DATA_CARD.md`` (of `card_data`) in the build's folder."""
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    (out / "data_card.json").write_text(text, encoding="utf-8")
    (out / "DATA_CARD.md").write_text(markdown(data), encoding="utf-8")


def markdown(data: dict[str, Any]) -> str:
    """The card for people."""
    lines = ["# Data card", "", f"Built with: `{data['command']}`", "", f"Seed: {data['seed']}", ""]
    lines += ["## Files", "", "| file | items | turns |", "|---|---|---|"]
    lines += [f"| {n} | {v['items']} | {v['turns']} |" for n, v in data["files"].items()]
    lines += ["", "## Turns per task", "", "| task | train | test |", "|---|---|---|"]
    tasks = sorted(set(data["tasks"]["train"]) | set(data["tasks"]["test"]))
    lines += [
        f"| {t} | {data['tasks']['train'].get(t, 0)} | {data['tasks']['test'].get(t, 0)} |"
        for t in tasks
    ]
    lines += [
        "",
        "## Modalities (images)",
        "",
        "| key | train | test | in Med-GRIT |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {k} | {v['train_images']} | {v['test_images']} | {'yes' if v['in_medgrit'] else 'no'} |"
        for k, v in data["modalities"].items()
    ]
    if data["extra_modalities"]:
        extra = ", ".join(f"`{m}`" for m in data["extra_modalities"])
        lines += [
            "",
            f"Extra modalities (outside Med-GRIT's 8, kept under their own key): {extra}. "
            "`birdview-train evaluate` scores them on their own and leaves them out of BiRD's "
            "8-modality mean. `birdview-train validate` reports them as unknown unless allowed: "
            "pass `--data-card data_card.json` (or `--allow-modality NAME`).",
        ]
    lines += ["", "## Split", ""]
    for side in ("train", "test"):
        split = data["split"][side]
        lines.append(f"- {side}: {split['cases']} cases, {split['images']} images")
    lines += ["", "## Labels", "", "| label | name | images | boxes |", "|---|---|---|---|"]
    lines += [
        f"| {k} | {v['name']} | {v['images']} | {v['boxes']} |" for k, v in data["labels"].items()
    ]
    lines += ["", "## Sources", ""]
    for source in data["sources"]:
        lines += _source_lines(source)
    lines += ["## Settings", "", "```json", json.dumps(data["settings"], indent=1), "```", ""]
    lines += ["## Conventions", ""]
    lines += [f"- **{k}**: {v}" for k, v in data["conventions"].items()]
    lines += ["", "## Question wordings", ""]
    lines += [f"- {task}: {' | '.join(pool)}" for task, pool in WORDINGS.items()]
    lines += ["", "Test files use the first wording of each task (the app's own)."]
    return "\n".join(lines) + "\n"


def _source_lines(source: dict[str, Any]) -> list[str]:
    licence = source["licence"]
    stated = f"; stated: {licence['stated']}" if "stated" in licence else ""
    from_file = f" (from {licence['file']})" if "file" in licence else ""
    lines = [
        f"### `{source['source']}`",
        "",
        f"- kind: {source['kind']}, dataset name: {source['dataset']}, images: {source['images']}",
        f"- licence: {licence.get('name', '')}{from_file}{stated}",
    ]
    lines += [f"- skipped: {reason} ({count})" for reason, count in source["skipped"].items()]
    lines += [f"- note: {note}" for note in source["notes"]]
    return [*lines, ""]
