"""Answers of a checkpoint to a Med-GRIT test file, as a JSONL file for `trainer.evaluation`.

BiRD's inference (Huang et al., MICCAI 2024, arXiv 2406.18146, and its authors' repository
github.com/ShawnHuang497/BiRD, tests/models/BiRD/infer.py): greedy decoding, first turn only,
80 new tokens (100 for the image analysis task, MII), here batched with left padding (the
authors' batches were right-padded, a known fault not reproduced). One row is written per
item::

    {"id", "image", "question", "annotation", "response", "item_id", "raw_response"}

The first five keys are those of the authors' infer.py, with the same values, so their
evaluation scripts (tests/models/BiRD/eval_{VG,RO,GC,MII}_score_modality.py) read our files:

* ``id`` is the item's position in the test file (an int): their caption scripts pass
  ``int(id)`` to COCO as the image id, so it must be an integer, one per item;
* ``image`` is the image's file name alone: they take the modality as
  ``image.split("_")[0]`` and index a dict of the 8 modalities with it, so a folder in front
  (``images/ct_00--...png`` → ``images/ct``) is a KeyError;
* ``question`` and ``annotation`` are the item's first question (without its ``Picture 1:
  <img>...</img>`` part) and first answer, in Med-GRIT text; ``response`` is the model's
  answer in Med-GRIT text, which is what both evaluations read.

Our own keys: ``item_id`` is the item's ``id`` in the test file (its image stem in Med-GRIT),
which resuming counts; ``raw_response`` is what the model wrote.

Boxes across model families. Med-GRIT writes boxes as ``<box>(x1,y1),(x2,y2)</box>`` on a
0–1000 grid; each checkpoint family reads and writes its own format (its codec in
`birdview.core.families`):

* the question's boxes are rewritten in the family's format before it is asked
  (`question_for_family`): special-token tags, or a JSON object (x or y first) on the
  0–1000 grid of the image or of the image padded to a square, or in pixels of the
  processor's resized image;
* the response's boxes are written back as Med-GRIT tags (`response_to_medgrit`):
  special-token tags on Med-GRIT's own grid are swapped for Med-GRIT's tags in place; for
  other formats (and tag answers that drifted into JSON) the boxes are read with the
  family's codec and appended, as ``<ref>label</ref><box>...</box>`` on the 0–1000 grid, to
  the text left without them (line breaks flattened to spaces, so the evaluation's newline
  rule cannot cut them off). Med-GRIT-format responses are left as they are. So the same
  evaluation serves every family.

A model that reasons before answering (`birdview.core.reasoning`) is scored on its answer:
``response`` is made from the answer alone, ``raw_response`` keeps everything it wrote. The
engine prepares the image as the family asks (padded to a square, for some), and the boxes'
text is mapped through the same padding by the codec.

The run is resumable: items whose id already has a row (``item_id``; ``id`` in files written
before ``item_id`` existed) in the output are skipped (an id that occurs k times in the test
file is skipped as often as it has rows), each batch's rows are appended and flushed at
once, and a last line cut off by a crash is dropped.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from birdview.core.box import Box
from birdview.core.box_codecs import GRID, MEDGRIT, BoxCodec
from birdview.core.prompts import Task, max_new_tokens
from birdview.core.reasoning import split_reasoning
from trainer.medgrit import ImageFolder, image_of, question_text, read_items, task_of

__all__ = ["PredictStats", "predict", "predict_with", "question_for_family", "response_to_medgrit"]

logger = logging.getLogger(__name__)

SizePx = tuple[float, float]
_PAIR = r"\(\s*(\d{1,9})\s*,\s*(\d{1,9})\s*\)"  # int() refuses 4300+ digits
_BOX_RE = re.compile(rf"<box>\s*{_PAIR}\s*,\s*{_PAIR}\s*</box>")
_TOKEN_TAGS = {
    "<|object_ref_start|>": "<ref>",
    "<|object_ref_end|>": "</ref>",
    "<|box_start|>": "<box>",
    "<|box_end|>": "</box>",
}


@dataclass(frozen=True)
class PredictStats:
    """What a run did: items in the file, rows already there, rows generated, seconds."""

    items: int
    skipped: int
    generated: int
    seconds: float


# -- boxes across families ------------------------------------------------------------------


def question_for_family(
    question: str, codec: BoxCodec, image_size_px: SizePx, model_size_px: SizePx | None = None
) -> str:
    """``question`` with each Med-GRIT ``<box>`` rewritten in ``codec``'s format (a box that
    cannot be read is left as it is)."""
    if codec == MEDGRIT:
        return question
    width, height = image_size_px

    def rewrite(match: re.Match) -> str:
        x1, y1, x2, y2 = (int(v) for v in match.groups())
        try:
            box = Box(
                "axial",
                0,
                x1 / GRID * width,
                y1 / GRID * height,
                x2 / GRID * width,
                y2 / GRID * height,
            )
        except ValueError:
            return match.group(0)
        return codec.encode_region(box, image_size_px, model_size_px=model_size_px)

    return _BOX_RE.sub(rewrite, question)


def response_to_medgrit(
    response: str, codec: BoxCodec, image_size_px: SizePx, model_size_px: SizePx | None = None
) -> str:
    """A family's response with its boxes in Med-GRIT text (see the module docstring)."""
    if codec == MEDGRIT:
        return response
    if _tags_on_medgrit_grid(codec):
        swapped = response
        for token, tag in _TOKEN_TAGS.items():
            swapped = swapped.replace(token, tag)
        if "<box>" in swapped or "{" not in swapped:
            return swapped
    parsed = codec.parse(
        response, image_size_px, plane="axial", slice_index=0, model_size_px=model_size_px
    )
    if not parsed.boxes:
        return response
    tags = MEDGRIT.encode(parsed.boxes, image_size_px)
    return " ".join(f"{parsed.text_without_boxes} {tags}".split())


def _tags_on_medgrit_grid(codec: BoxCodec) -> bool:
    """True when the codec's tags hold Med-GRIT's very numbers (x first on the image's grid),
    so swapping the tags is the whole conversion."""
    return codec.style == "token_tags" and codec.relative and not codec.pad_to_square


# -- running --------------------------------------------------------------------------------


def predict(
    model_dir: str | os.PathLike,
    data: str | os.PathLike,
    images_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    adapter_dir: str | os.PathLike | None = None,
    batch_size: int = 8,
    precision: str = "auto",
    device: str = "auto",
    progress: bool = True,
) -> PredictStats:
    """Load the checkpoint (`birdview.inference.loader.load_checkpoint`) and run
    `predict_with`.

    The inputs are read and checked first, so a broken test file is refused in a moment,
    not after the model has loaded.

    Raises:
        ModelLoadError: the checkpoint cannot be loaded.
        and what `predict_with` raises.
    """
    inputs = _read_inputs(data, images_dir, out, batch_size)
    from birdview.inference.engine import Engine  # torch: after the checks
    from birdview.inference.loader import load_checkpoint

    loaded = load_checkpoint(model_dir, adapter_dir=adapter_dir, precision=precision, device=device)
    return _answer_all(Engine(loaded), inputs, batch_size, progress)


def predict_with(
    engine: Any,
    data: str | os.PathLike,
    images_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    batch_size: int = 8,
    progress: bool = True,
) -> PredictStats:
    """Answer the first question of every item of ``data`` not yet in ``out`` with
    ``engine`` (a `birdview.inference.engine.Engine`), ``batch_size`` items at a time.
    Consecutive items with the same token budget share a batch.

    Raises:
        ValueError: ``batch_size`` is below 1, ``data`` holds no items, or ``data`` or
            ``out`` cannot be read.
        FileNotFoundError: ``data`` or ``images_dir`` does not exist, ``out`` is a folder, or
            an item's image is not in ``images_dir`` (rows of earlier batches are kept; run
            ``birdview-train validate`` to list every such item).
        InferenceError: generation failed.
    """
    inputs = _read_inputs(data, images_dir, out, batch_size)
    return _answer_all(engine, inputs, batch_size, progress)


@dataclass
class _Inputs:
    """A test file's items, checked, and what its output already holds."""

    items: list[Any]
    folder: ImageFolder
    out: Path
    done: Counter
    started: float


def _read_inputs(data, images_dir, out, batch_size: int) -> _Inputs:
    if batch_size < 1:
        raise ValueError(f"Unable to predict as batch_size {batch_size!r} is below 1")
    started = time.perf_counter()
    if not Path(images_dir).is_dir():
        raise FileNotFoundError(
            f"Unable to predict as the images folder '{images_dir}' does not exist"
        )
    out_path = Path(out)
    if out_path.is_dir():
        raise FileNotFoundError(
            f"Unable to write predictions to '{out}' as it is a folder, not a file"
        )
    items = read_items(data)
    if not items:
        raise ValueError(f"Unable to predict as '{data}' holds no items")
    return _Inputs(items, ImageFolder(images_dir), out_path, _rows_done(out_path), started)


def _answer_all(engine: Any, inputs: _Inputs, batch_size: int, progress: bool) -> PredictStats:
    items, out_path, folder = inputs.items, inputs.out, inputs.folder
    pending = _pending(items, inputs.done)
    skipped = len(items) - len(pending)
    logger.info("%d items, %d already answered, %d to go", len(items), skipped, len(pending))
    bar = _progress_bar(len(items), skipped, progress)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    generated = 0
    try:
        with open(out_path, "a", encoding="utf-8") as stream:
            for batch in _batches(pending, batch_size):
                rows = _answer(engine, batch, folder)
                stream.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
                stream.flush()
                os.fsync(stream.fileno())
                generated += len(rows)
                bar.update(len(rows))
    finally:
        bar.close()
    seconds = time.perf_counter() - inputs.started
    logger.info("wrote %d rows to %s in %.1f s", generated, out_path, seconds)
    return PredictStats(len(items), skipped, generated, seconds)


def _rows_done(path: Path) -> Counter:
    """Ids in an existing output, counted; a last line cut off by a crash is removed."""
    done: Counter = Counter()
    if not path.exists():
        return done
    data = path.read_bytes()
    good_end = 0
    for line in data.splitlines(keepends=True):
        try:
            row = _row(line)
        except ValueError as exc:
            if good_end + len(line) < len(data):
                raise ValueError(
                    f"Unable to resume '{path}' as the line at byte {good_end} is not a JSON "
                    "object; move the file away to start again"
                ) from exc
            break
        if not line.endswith(b"\n"):
            break
        if row is not None:
            # Files from before "item_id" existed held the item's id under "id".
            done[str(row.get("item_id", row.get("id")))] += 1
        good_end += len(line)
    if good_end < len(data):
        logger.warning("dropping a cut-off last line of %s", path)
        with open(path, "r+b") as stream:
            stream.truncate(good_end)
    return done


def _row(line: bytes) -> dict[str, Any] | None:
    """A JSONL line as a row; None for a blank line.

    Raises:
        ValueError: the line is not a UTF-8 JSON object (or nests too deeply to parse).
    """
    if not line.strip():
        return None
    try:
        row = json.loads(line)
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    return row


def _pending(items: list[Any], done: Counter) -> list[tuple[int, dict[str, Any]]]:
    left = Counter(done)
    pending = []
    for index, item in enumerate(items):
        item_id = str(item.get("id")) if isinstance(item, dict) else ""
        if left[item_id] > 0:
            left[item_id] -= 1
            continue
        pending.append((index, item))
    return pending


def _budget(item: dict[str, Any]) -> int:
    code = task_of(item["conversations"][0][0]) or Task.VG.code
    return max_new_tokens(Task(code))


def _batches(pending: list[tuple[int, dict[str, Any]]], batch_size: int):
    batch: list[tuple[int, dict[str, Any]]] = []
    budget = None
    for entry in pending:
        entry_budget = _budget(entry[1])
        if batch and (len(batch) == batch_size or entry_budget != budget):
            yield batch
            batch = []
        batch.append(entry)
        budget = entry_budget
    if batch:
        yield batch


def _answer(engine: Any, batch: list[tuple[int, dict]], folder: ImageFolder) -> list[dict]:
    from birdview.inference.engine import model_size_px

    family = engine.family
    codec = engine.codec  # the family's, or the checkpoint card's convention
    images, questions, sizes, rows = [], [], [], []
    for index, item in batch:
        image_name = image_of(item)
        image = _load_image(index, item, image_name, folder)
        height, width = image.shape[:2]
        resized = model_size_px(engine.processor, width, height, family)
        question = question_text(item["conversations"][0][0])
        images.append(image)
        questions.append(question_for_family(question, codec, (width, height), resized))
        sizes.append(((width, height), resized))
        rows.append(
            {
                "id": index,  # BiRD's scripts: int(id) is the COCO image id
                "image": PurePath(image_name.replace("\\", "/")).name,  # their modality key
                "question": question,
                "annotation": str(item["conversations"][0][1]),
                "item_id": str(item.get("id")),
            }
        )
    budget = _budget(batch[0][1])
    answers = engine.answer_batch(images, questions, max_new_tokens=budget)
    for row, answer, (size, resized) in zip(rows, answers, sizes, strict=True):
        reply = split_reasoning(answer, family.chat.thoughts)
        row["response"] = response_to_medgrit(reply.answer, codec, size, resized)
        row["raw_response"] = answer
    return rows


def _load_image(index: int, item: dict, image_name: str, folder: ImageFolder) -> np.ndarray:
    from PIL import Image

    path = folder.find(image_name)
    if path is None:
        raise FileNotFoundError(
            f"Unable to predict item {index} ({item.get('id')!r}) as its image {image_name!r} "
            f"is not in '{folder.folder}'; run 'birdview-train validate' to list every such item"
        )
    with Image.open(path) as image:
        return np.array(image.convert("RGB"))


def _progress_bar(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        disable=not enabled,
        unit="item",
        desc="predict",
        mininterval=2.0,
        dynamic_ncols=True,
    )
