"""Med-GRIT-270k files: reading, writing and checking them (the format of BiRD's data, arXiv
2406.18146, and of its authors' repository github.com/ShawnHuang497/BiRD).

A Med-GRIT file is a JSON list of ``{"id": <image stem>, "conversations": [[question,
answer], ...]}``. The first question carries the image, Qwen-VL style::

    Picture 1: <img>ct_00--AbdomenCT1K--Case_00220--x_0359.png</img>
    Where is the liver located in the image?

Boxes are ``<box>(x1,y1),(x2,y2)</box>`` with integers on a 0–1000 grid. Files reach hundreds
of megabytes, so `iter_items` streams them item by item; `write_items` writes atomically.
`validate` checks a file against an image folder and lists every problem it finds::

    report = validate("test_VG.json", "images/")
    print(report.summary())
    for problem in report.problems:
        print(problem)

Modalities outside Med-GRIT's 8 are problems unless allowed, by name or from the data card
``birdview-train build-data`` writes::

    validate("train.json", "out/", extra_modalities=("pathology", "oct"))
    validate("train.json", "out/", extra_modalities=card_extra_modalities("out/data_card.json"))
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import re
import reprlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from birdview.core.files import write_atomic
from trainer._json_stream import iter_json_list, read_json

__all__ = [
    "MODALITIES",
    "TASKS",
    "ImageFolder",
    "Problem",
    "Report",
    "box_strings",
    "card_extra_modalities",
    "find_image",
    "image_of",
    "iter_items",
    "modality_of",
    "question_text",
    "read_items",
    "task_of",
    "validate",
    "write_items",
]

logger = logging.getLogger(__name__)

# Evaluation order of the modalities (the image file name up to its first underscore).
MODALITIES = ("ct", "mr", "x", "pet", "endoscopy", "dermoscopy", "fundus", "ultrasound")
# Med-GRIT's task code names: grounding, referring classification, captioning, analysis.
TASKS = ("VG", "RO", "GC", "MII")

GRID = 1000

_IMG_RE = re.compile(r"<img>(.*?)</img>", re.DOTALL)
# "Picture 1: <img>...</img>" and the line break after it; a bare <img>...</img> as well.
_PICTURE_RE = re.compile(r"(?:Picture\s*\d+\s*:\s*)?<img>.*?</img>[ \t]*\n?", re.DOTALL)
_BOX_RE = re.compile(r"<box>(.*?)</box>", re.DOTALL)
# At most 9 digits: int() refuses strings past 4300 digits with a ValueError of its own.
_COORDS_RE = re.compile(
    r"\(\s*(\d{1,9})\s*,\s*(\d{1,9})\s*\)\s*,\s*\(\s*(\d{1,9})\s*,\s*(\d{1,9})\s*\)"
)


# -- names ----------------------------------------------------------------------------------


def modality_of(image_name: str) -> str:
    """The modality key of an image: its file name up to the first underscore, as BiRD's
    evaluation computes it ("ct_00--AbdomenCT1K--...png" → "ct", "x_ray--...png" → "x").
    Not checked against `MODALITIES`."""
    name = str(image_name).replace("\\", "/").rsplit("/", 1)[-1]
    return name.split("_", 1)[0]


def image_of(item: dict[str, Any]) -> str:
    """The ``<img>`` path of the item's first question.

    Raises:
        ValueError: the item has no first question or it carries no ``<img>...</img>``.
    """
    try:
        question = item["conversations"][0][0]
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError(
            f"Unable to find the image of item {_id(item)!r} as it has no first question"
        ) from exc
    match = _IMG_RE.search(str(question))
    if match is None:
        raise ValueError(
            f"Unable to find the image of item {_id(item)!r} as its first question has no "
            "<img>...</img>"
        )
    return match.group(1).strip()


def question_text(question: str) -> str:
    """The question without its ``Picture 1: <img>...</img>`` part."""
    return _PICTURE_RE.sub("", str(question), count=1).strip()


def box_strings(text: str) -> list[str]:
    """The contents of every ``<box>...</box>`` in ``text``, in order."""
    return _BOX_RE.findall(str(text))


def task_of(question: str) -> str | None:
    """The task code ("VG", "RO", "GC", "MII") a question asks for, guessed from its
    wording and whether it holds a box; None when the wording fits none of them.

    Med-GRIT's questions are templated: "Where is X located in the image?" (VG), "What
    anatomical structure is present at the <box>?" (RO), "Can you describe the content
    within the <box>?" (GC), "What can you interpret from the overall image?" (MII).
    """
    text = question_text(question).lower()
    if "<box>" in text:
        if re.search(r"describ|content|caption|explain|tell me|detail", text):
            return "GC"
        if re.search(r"what|which|identify|name|structure|object|organ|classif", text):
            return "RO"
        return None
    if re.search(r"overall|whole image|entire image|interpret|analy[sz]", text):
        return "MII"
    if re.search(r"where|locat|position|find|ground|detect|box", text):
        return "VG"
    return None


def find_image(image: str, images_dir: str | os.PathLike) -> Path | None:
    """The file an ``<img>`` path names, always inside ``images_dir``: ``images_dir/image``
    for a relative path, else ``images_dir/<file name>`` (Med-GRIT's absolute paths point into
    the authors' folders); None when neither is a file, or when a relative path climbs out of
    the folder ("../../etc/passwd"): the files of the data never name what is read outside it."""
    return ImageFolder(images_dir).find(image)


class ImageFolder:
    """`find_image` for many items: ``ImageFolder(images_dir).find(image)`` lists the
    folder once instead of a stat per item."""

    def __init__(self, images_dir: str | os.PathLike) -> None:
        self.folder = Path(images_dir)
        self._names: set[str] | None = None

    def find(self, image: str) -> Path | None:
        text = str(image).strip().replace("\\", "/")
        if not text or self.escapes(text):
            return None
        name = text.rsplit("/", 1)[-1]
        if not posixpath.isabs(text) and "/" in text:
            inner = self.folder / posixpath.normpath(text)
            if inner.is_file():
                return inner
        if name in self._listing():
            return self.folder / name
        return None

    @staticmethod
    def escapes(image: str) -> bool:
        """Whether a relative ``<img>`` path leads out of the folder ("../x.png",
        "a/../../x.png"). Absolute paths do not: they are looked up by file name only."""
        text = str(image).strip().replace("\\", "/")
        if posixpath.isabs(text):
            return False
        return posixpath.normpath(text).split("/", 1)[0] == ".."

    def _listing(self) -> set[str]:
        if self._names is None:
            try:
                self._names = {e.name for e in os.scandir(self.folder) if e.is_file()}
            except OSError:
                self._names = set()
        return self._names


# -- reading and writing --------------------------------------------------------------------


def iter_items(path: str | os.PathLike) -> Iterator[Any]:
    """The elements of the JSON list in ``path``, one at a time, without reading the whole
    file into memory.

    Raises:
        FileNotFoundError: there is no such file.
        ValueError: the file is not a JSON list (the message gives the character offset).
    """
    return iter_json_list(path)


def read_items(path: str | os.PathLike) -> list[Any]:
    """The whole JSON list in ``path``.

    Raises:
        FileNotFoundError: there is no such file.
        ValueError: the file is not a JSON list.
    """
    return list(iter_items(path))


def write_items(path: str | os.PathLike, items: Iterable[Any]) -> Path:
    """Write ``items`` as a JSON list, one item a line, atomically: to a temporary file in
    the same folder, then renamed over ``path``, so a crash never leaves half a file.
    ``items`` may be a generator."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # 0o666 less the umask, like any file the user writes: training lists are shared data.
    write_atomic(target, _json_list_chunks(items), mode=0o666)
    return target


def _json_list_chunks(items: Iterable[Any]) -> Iterator[str]:
    yield "["
    for n, item in enumerate(items):
        yield ",\n" if n else "\n"
        yield json.dumps(item, ensure_ascii=False)
    yield "\n]\n"


# -- validation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one item: its position in the list (-1: the file as a whole), its
    id and why."""

    index: int
    item_id: str
    reason: str

    def __str__(self) -> str:
        if self.index < 0:  # about the file as a whole
            return self.reason
        return f"item {self.index} ({_short(self.item_id)}): {self.reason}"


@dataclass
class Report:
    """What `validate` found: every problem, and counts over the whole file.

    Attributes:
        problems: every problem, in file order.
        items: items read.
        turns: question–answer pairs.
        boxes: well-formed boxes in questions and answers.
        tasks: turns per task code (`task_of`; "unknown" when it cannot tell).
        modalities: items per modality key.
    """

    problems: list[Problem] = field(default_factory=list)
    items: int = 0
    turns: int = 0
    boxes: int = 0
    tasks: Counter = field(default_factory=Counter)
    modalities: Counter = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """A few lines: counts, tasks, modalities, problems."""
        tasks = ", ".join(f"{k} {v}" for k, v in sorted(self.tasks.items())) or "none"
        order = {m: n for n, m in enumerate(MODALITIES)}
        by_modality = sorted(self.modalities.items(), key=lambda kv: (order.get(kv[0], 99), kv))
        modalities = ", ".join(f"{k} {v}" for k, v in by_modality) or "none"
        return (
            f"{self.items} items, {self.turns} turns, {self.boxes} boxes\n"
            f"tasks: {tasks}\n"
            f"modalities: {modalities}\n"
            f"problems: {len(self.problems)}"
        )


def validate(
    items_or_path: Iterable[Any] | str | os.PathLike,
    images_dir: str | os.PathLike,
    *,
    extra_modalities: Iterable[str] = (),
) -> Report:
    """Check every item of a Med-GRIT list (or file) and keep going past problems.

    Reported per item: bad structure (not an object, no id, no conversations, a turn that is
    not two strings), a first question without ``<img>``, an image missing from
    ``images_dir`` (see `find_image`), an unknown modality, an empty question or answer, and
    a malformed box (not ``(x1,y1),(x2,y2)`` integers within 0–1000 with x1 < x2, y1 < y2, or
    an unclosed ``<box>``), and an image path that climbs out of ``images_dir``
    (``../../etc/passwd``: reported, never opened). A file that stops being valid JSON ends
    the check with one problem at the item where reading failed; a list without items is a
    problem too (index -1: the file as a whole).

    A modality is unknown when it is neither one of `MODALITIES` nor in
    ``extra_modalities`` (e.g. ``("pathology", "oct")``, or `card_extra_modalities` of a
    build's data card). Allowed or not, every modality is counted under its own key in
    `Report.modalities`.

    Raises:
        FileNotFoundError: the file or the images folder does not exist, or the file is a
            folder.
    """
    if not Path(images_dir).is_dir():
        cause = "is a file, not a folder" if Path(images_dir).exists() else "does not exist"
        raise FileNotFoundError(f"Unable to validate as the images folder '{images_dir}' {cause}")
    report = Report()
    finder = ImageFolder(images_dir)
    allowed = frozenset(MODALITIES) | _names(extra_modalities)
    items = iter_items(items_or_path) if isinstance(items_or_path, str | os.PathLike) else None
    iterator = iter(items if items is not None else items_or_path)
    index = 0
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            break
        except ValueError as exc:
            report.problems.append(Problem(index, "", f"bad structure: {exc}"))
            break
        report.items += 1
        for reason in _check_item(item, finder, report, allowed):
            report.problems.append(Problem(index, _id(item), reason))
        index += 1
    if not report.items and not report.problems:
        where = f"'{items_or_path}' is an empty list" if items is not None else "the list is empty"
        report.problems.append(Problem(-1, "", f"no items: {where}"))
    logger.info("validated %d items: %d problems", report.items, len(report.problems))
    return report


def card_extra_modalities(card: str | os.PathLike) -> tuple[str, ...]:
    """The ``extra_modalities`` a data card lists (``birdview-train build-data`` writes the
    modalities it emitted that Med-GRIT lacks there), for `validate`'s ``extra_modalities``.
    ``card`` is the ``data_card.json`` or the build folder holding it.

    Raises:
        FileNotFoundError: there is no such card.
        ValueError: the card is not JSON, or its ``extra_modalities`` is missing or not a list
            of strings.
    """
    path = Path(card)
    if path.is_dir():
        path = path / "data_card.json"
    if not path.is_file():
        cause = "is a folder, not a file" if path.exists() else "does not exist"
        raise FileNotFoundError(f"Unable to read the data card '{path}' as it {cause}")
    data = read_json(path, "the data card")
    extra = data.get("extra_modalities") if isinstance(data, dict) else None
    if not isinstance(extra, list) or not all(isinstance(m, str) for m in extra):
        raise ValueError(
            f"Unable to read the modalities of the data card '{path}' as its "
            "'extra_modalities' is not a list of strings"
        )
    return tuple(m.strip() for m in extra if m.strip())


def _names(modalities: Iterable[str]) -> frozenset[str]:
    """Modality keys, a lone string taken as one key rather than its letters."""
    if isinstance(modalities, str):
        modalities = (modalities,)
    return frozenset(str(m).strip() for m in modalities if str(m).strip())


def _id(item: Any) -> str:
    if not isinstance(item, dict):
        return ""
    item_id = item.get("id", "")
    return item_id if isinstance(item_id, str) else _short(item_id)


def _short(value: Any) -> str:
    """``repr(value)``, cut short: a hostile file's id or path may be megabytes long."""
    return _REPR.repr(value)


def _repr() -> reprlib.Repr:
    shortened = reprlib.Repr()  # keyword arguments only from Python 3.12
    shortened.maxstring = shortened.maxother = 240  # any real image name fits
    shortened.maxlevel = 3
    return shortened


_REPR = _repr()


def _check_item(
    item: Any, finder: ImageFolder, report: Report, allowed: frozenset[str]
) -> list[str]:
    if not isinstance(item, dict):
        return [f"bad structure: the item is a {type(item).__name__}, not an object"]
    reasons = []
    item_id = item.get("id")
    if not isinstance(item_id, str) or not item_id.strip():
        reasons.append(f"bad structure: 'id' is {_short(item_id)}, not a non-empty string")
    conversations = item.get("conversations")
    if not isinstance(conversations, list) or not conversations:
        return [*reasons, "bad structure: 'conversations' is not a non-empty list"]
    for n, turn in enumerate(conversations):
        if not (isinstance(turn, list | tuple) and len(turn) == 2):
            turn = None
        if turn is None or not all(isinstance(t, str) for t in turn):
            reasons.append(f"bad structure: turn {n} is not [question, answer] strings")
            continue
        report.turns += 1
        reasons.extend(_check_turn(n, *turn, report))
    reasons.extend(_check_image(item, finder, report, allowed))
    return reasons


def _check_turn(n: int, question: str, answer: str, report: Report) -> list[str]:
    reasons = []
    report.tasks[task_of(question) or "unknown"] += 1
    if not question_text(question):
        reasons.append(f"empty question in turn {n}")
    if not answer.strip():
        reasons.append(f"empty answer in turn {n}")
    for side, text in (("question", question), ("answer", answer)):
        for reason in _box_problems(text):
            reasons.append(f"malformed box in the {side} of turn {n}: {reason}")
        report.boxes += sum(1 for b in box_strings(text) if _box_error(b) is None)
    return reasons


def _box_problems(text: str) -> list[str]:
    problems = [r for r in (_box_error(b) for b in box_strings(text)) if r is not None]
    opened, closed = text.count("<box>"), text.count("</box>")
    if opened != closed:
        problems.append(f"{opened} <box> but {closed} </box>")
    return problems


def _box_error(content: str) -> str | None:
    match = _COORDS_RE.fullmatch(content.strip())
    if match is None:
        return f"{_short(content)} is not (x1,y1),(x2,y2) with integer coordinates"
    x1, y1, x2, y2 = (int(v) for v in match.groups())
    if max(x1, y1, x2, y2) > GRID:
        return f"{content!r} reaches beyond the 0–{GRID} grid"
    if not (x1 < x2 and y1 < y2):
        return f"{content!r} does not have x1 < x2 and y1 < y2"
    return None


def _check_image(
    item: dict[str, Any], finder: ImageFolder, report: Report, allowed: frozenset[str]
) -> list[str]:
    try:
        image = image_of(item)
    except ValueError:
        return ["bad structure: the first question has no <img>...</img>"]
    modality = modality_of(image)
    report.modalities[modality] += 1
    reasons = []
    if modality not in allowed:
        reasons.append(f"unknown modality {_short(modality)} (from the image name {_short(image)})")
    if finder.escapes(image):
        reasons.append(f"image {_short(image)} points outside '{finder.folder}' (not opened)")
    elif finder.find(image) is None:
        reasons.append(f"image {_short(image)} not found in '{finder.folder}'")
    return reasons
