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
build is complete: a build that fails (no usable label, a broken source) leaves nothing
behind, and the same command runs again as soon as its cause is fixed.

Images without any object (slices of a volume where no label is present) are kept with
probability ``negative_rate`` and then carry one not-present question; images with objects get
one with the same probability, asking for a label known to be absent from them.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from trainer.data import card
from trainer.data.boxes import regions_of
from trainer.data.conversations import Facts, Turn, first_question, test_turns, train_turns
from trainer.data.result import (
    TEST_FILES,
    TRAIN_FILE,
    BuildResult,
    BuildSettings,
    ImageRecord,
    group_of,
    is_test,
)
from trainer.data.sources import (
    SourceImage,
    SourceReport,
    SourceSpec,
    masks2d_images,
    parse_source,
    read_licence,
    sammed2d_images,
)

__all__ = [
    "TEST_FILES",
    "TRAIN_FILE",
    "BuildResult",
    "BuildSettings",
    "ImageRecord",
    "build_dataset",
    "group_of",
    "is_test",
    "split_patients",
]

logger = logging.getLogger(__name__)

# Turns per training item: long enough for a real multi-turn mix, short enough for 2048 tokens.
MAX_TURNS_PER_ITEM = 8


def build_dataset(
    sources: Sequence[str], out: str | os.PathLike, settings: BuildSettings, *, command: str = ""
) -> BuildResult:
    """Build the dataset from ``sources`` (``[KIND:]PATH[?options]``) into ``out``.

    Raises:
        ValueError: a source is unusable, ``out`` is a file or a folder that is not empty, two
            images get one name, or no source gave an image with a usable label.
    """
    specs = [parse_source(text) for text in sources]  # every source checked before writing
    target = Path(out)
    _check_out(target)
    result = BuildResult(_work_folder(target))
    try:
        _build(result, specs, settings, command)
    except BaseException:
        shutil.rmtree(result.out, ignore_errors=True)
        raise
    _move_into_place(result.out, target)
    result.out = target
    return result


def _build(
    result: BuildResult, specs: list[SourceSpec], settings: BuildSettings, command: str
) -> None:
    names: set[str] = set()
    for index, spec in enumerate(specs):
        report = SourceReport(spec.text, spec.kind, spec.dataset, read_licence(spec))
        result.sources.append(report)
        for image in _images(spec, settings, report):
            record = _record(image, index, settings, result.out, names, report)
            if record is not None:
                report.images += 1
                result.records.append(record)
        logger.info("%s: %d images (%s)", spec.text, report.images, spec.kind)
    if not result.records:
        raise ValueError(_no_usable_labels(result.sources))
    result.records.sort(key=lambda r: r.facts.name)
    result.test_patients = split_patients(result.records, settings)
    _compose(result, settings)
    _write(result, settings, command)


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"Unable to build into '{out}' as it is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise ValueError(f"Unable to build into '{out}' as it is not empty")


def _work_folder(out: Path) -> Path:
    """A new hidden folder beside ``out`` (same file system, so the final rename is atomic)."""
    parent = out.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=parent))
    (work / "images").mkdir()
    return work


def _move_into_place(work: Path, out: Path) -> None:
    if out.is_dir():
        out.rmdir()  # empty (checked before the build); a folder is not renamed over another
    os.rename(work, out)


def _no_usable_labels(sources: list[SourceReport]) -> str:
    """Where no usable label was found, and why each source's images were left out."""
    parts = []
    for report in sources:
        skipped = sorted(report.skipped.items(), key=lambda kv: -kv[1])
        reasons = "; ".join(f"{reason} ({count})" for reason, count in skipped[:3])
        more = f"; {len(skipped) - 3} more reasons" if len(skipped) > 3 else ""
        parts.append(f"'{report.text}' ({report.kind}: {reasons or 'no images found'}{more})")
    return (
        f"Unable to build a dataset as no usable labels were found in {', '.join(parts)}; "
        "nothing was written"
    )


def _images(
    spec: SourceSpec, settings: BuildSettings, report: SourceReport
) -> Iterator[SourceImage]:
    if spec.kind == "sammed2d":
        return sammed2d_images(spec, report)
    if spec.kind == "masks2d":
        return masks2d_images(spec, report)
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
    out: Path,
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
    _write_png(out / "images" / image.name, pixels)
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


def split_patients(records: Sequence[ImageRecord], settings: BuildSettings) -> set[str]:
    """The split groups (cases, or patients where known) that go to test.

    Within each dataset: a seeded shuffle of its groups, the first ``round(test_fraction ×
    n)`` of them, at least one and at most n − 1 when both are possible. Per dataset, so a
    small dataset is not left out of the test files by chance; a dataset of one case stays in
    train.
    """
    by_dataset: dict[str, set[str]] = {}
    for record in records:
        by_dataset.setdefault(record.dataset, set()).add(group_of(record))
    test: set[str] = set()
    for dataset, found in sorted(by_dataset.items()):
        groups = sorted(found)
        count = round(settings.test_fraction * len(groups))
        if len(groups) > 1 and 0 < settings.test_fraction < 1:
            count = min(max(count, 1), len(groups) - 1)
        random.Random(f"{settings.seed}|split|{dataset}").shuffle(groups)
        test.update(groups[:count])
    return test


def _compose(result: BuildResult, settings: BuildSettings) -> None:
    items: dict[str, list[dict]] = {TRAIN_FILE: [], **{f: [] for f in TEST_FILES.values()}}
    turns: dict[str, list[Turn]] = {name: [] for name in items}
    for record in result.records:
        facts = record.facts
        rng = random.Random(f"{settings.seed}|text|{facts.name}")
        if is_test(record, result):
            for task, task_turns in test_turns(facts, rng, settings.negative_rate).items():
                for turn in task_turns:
                    items[TEST_FILES[task]].append(_item(facts.name, [turn]))
                    turns[TEST_FILES[task]].append(turn)
            continue
        mixed = train_turns(facts, rng, settings.negative_rate)
        for start in range(0, len(mixed), MAX_TURNS_PER_ITEM):
            items[TRAIN_FILE].append(_item(facts.name, mixed[start : start + MAX_TURNS_PER_ITEM]))
        turns[TRAIN_FILE].extend(mixed)
    result.items, result.turns = items, turns


def _item(image_name: str, turns: list[Turn]) -> dict:
    conversations = [[t.question, t.answer] for t in turns]
    conversations[0][0] = first_question(image_name, conversations[0][0])
    return {"id": Path(image_name).stem, "conversations": conversations}


def _write(result: BuildResult, settings: BuildSettings, command: str) -> None:
    from trainer.medgrit import write_items

    for name, items in result.items.items():
        if not items:
            logger.warning(
                "%s has no items: no dataset has a case for it (a dataset of one case stays in "
                "train); 'birdview-train validate' reports it as a problem",
                name,
            )
        write_items(result.out / name, items)
    card.write_card(result, settings, command)
