"""Questions and answers for the four tasks, from the boxes of one image.

Test files ask every question the way the app asks it (`birdview.core.prompts`), one turn per
item, and answer with the first template of each pool; training conversations draw wordings
from the pools below, so a model learns the tasks rather than one phrasing.

Position words describe where a box sits **in the image** ("the upper left part of the
image"), never a side of the patient: 2D sources carry no orientation (BiomedParse's CT slices
are stored transposed), and in sagittal slices image left is anterior. For axial and coronal
slices in radiological convention, image left is the patient's right, so "the left part of the
image" holding the liver is correct and not a contradiction.

Every pool wording is one `trainer.medgrit.task_of` recognises as its task (a test checks it).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from birdview.core.prompts import (
    analysis_question,
    caption_question,
    grounding_question,
    referring_question,
)
from trainer.data.boxes import PixelBox, Region, text_boxes, text_region
from trainer.data.names import MODALITY_WORDS, article, is_plural, join_names, readable, the

__all__ = [
    "Facts",
    "IMAGE_TAG",
    "Turn",
    "position_words",
    "test_turns",
    "train_turns",
]

IMAGE_TAG = "Picture 1: <img>images/{name}</img>\n"

# The first wording of each pool is the app's own (birdview.core.prompts).
VG_QUESTIONS = (
    "Where is {the} located in the image?",
    "Where is {the}?",
    "Can you find {the} in this image?",
    "Locate {the} in the image.",
    "Show me the position of {the}.",
    "Please detect {the} and give its bounding box.",
)
VG_ANSWERS = (
    "{The} {is} located at {boxes}.",
    "{The} {is} at {boxes}.",
    "{The} can be seen at {boxes}.",
    "You can find {the} at {boxes}.",
)
ABSENT_ANSWERS = (
    "There is no {name} in this image.",
    "{The} {is} not visible in this image.",
    "No {name} can be seen in this image.",
    "This image does not show {the}.",
)
ROC_QUESTIONS = (
    "What anatomical structure is present at the {region}?",
    "What is shown at {region}?",
    "Which structure is located at {region}?",
    "Identify the object in {region}.",
    "Name the structure at {region}.",
)
# Names as written everywhere else ("liver", "T11 vertebra"): a capital would be taught as part
# of the name, and the app shows the answer as it is.
ROC_ANSWERS = ("{name}", "{name}.", "This is {the}.", "The region shows {the}.")
RC_QUESTIONS = (
    "Can you describe the content within the {region}?",
    "Describe the region {region}.",
    "Please describe what is inside {region}.",
    "Tell me about the area {region}.",
    "Give a short description of the content in {region}.",
)
RC_ANSWERS = (
    "This region contains {names}, in the {position} of the image.",
    "This {size} region shows {names}, located in the {position} of the image.",
    "{Names} {is} seen here, in the {position} of the image.",
)
RC_OTHERS = " It also overlaps {others}."
MIA_QUESTIONS = (
    "What can you interpret from the overall image?",
    "Describe the whole image.",
    "Give an analysis of this image.",
    "What does this image show overall?",
    "Please interpret this image.",
)
MIA_SHOWS = ("It shows {names}.", "Visible structures include {names}.")
MIA_MANY = "It shows {count} labelled structures, among them {names}."
MIA_WHERE = (
    "{The} {is} in the {position} of the image.",
    "{The} lies in the {position} of the image.",
)
# Answers stay within BiRD's 100-token MIA budget: at most this many names, positions of a few.
MIA_MAX_NAMES = 8
MIA_MAX_POSITIONS = 3
# A region "overlaps" another object when this share of its box is covered by that object's.
OVERLAP_SHARE = 0.25


@dataclass(frozen=True)
class Facts:
    """What the text may say about one image."""

    name: str
    modality: str
    plane: str | None
    body_part: str | None
    width: int
    height: int
    regions: tuple[Region, ...]
    absent: tuple[str, ...]

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)


@dataclass(frozen=True)
class Turn:
    """A question and its answer, with the task code and whether it is a negative."""

    task: str
    question: str
    answer: str
    negative: bool = False


# -- words ----------------------------------------------------------------------------------


def position_words(box: PixelBox, width: int, height: int) -> str:
    """Where a box's centre lies in the image, by thirds: "upper left part", "centre"."""
    x, y = box.centre
    vertical = "upper" if y < height / 3 else "lower" if y > 2 * height / 3 else ""
    horizontal = "left" if x < width / 3 else "right" if x > 2 * width / 3 else ""
    if not vertical and not horizontal:
        return "centre"
    return " ".join(w for w in (vertical, horizontal) if w) + " part"


def _size_word(box: PixelBox, facts: Facts) -> str:
    share = box.area / (facts.width * facts.height)
    return "small" if share < 0.02 else "medium-sized" if share < 0.15 else "large"


def _fill(template: str, name: str, **more: str) -> str:
    """A template with the name's forms: {name}, {Name}, {the}, {The}, {is}."""
    the_name = the(name)
    return template.format(
        name=name,
        Name=_capital(name),
        the=the_name,
        The=_capital(the_name),
        **{"is": "are" if is_plural(name) else "is"},
        **more,
    )


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _pick(pool: Sequence[str], rng: random.Random | None) -> str:
    return pool[0] if rng is None else rng.choice(pool)


# -- one turn of each task ------------------------------------------------------------------


def _grouped(facts: Facts) -> dict[str, list[Region]]:
    """Regions by readable name (the instances of a label, and labels spelled alike, go
    together), in the order of the regions."""
    groups: dict[str, list[Region]] = {}
    for region in facts.regions:
        groups.setdefault(readable(region.label), []).append(region)
    return groups


def vg_turn(facts: Facts, name: str, regions: list[Region], rng: random.Random | None) -> Turn:
    boxes = [box for region in regions for box in region.components]
    question = grounding_question(name) if rng is None else _fill(_pick(VG_QUESTIONS, rng), name)
    answer = _fill(_pick(VG_ANSWERS, rng), name, boxes=text_boxes(name, boxes, facts.size))
    return Turn("VG", question, answer)


def absent_turn(name: str, rng: random.Random | None) -> Turn:
    question = grounding_question(name) if rng is None else _fill(_pick(VG_QUESTIONS, rng), name)
    return Turn("VG", question, _fill(_pick(ABSENT_ANSWERS, rng), name), negative=True)


def _regions_by_box(facts: Facts) -> dict[PixelBox, list[Region]]:
    """Union boxes with the regions that have them; two labels with the same mask (a
    BiomedParse quirk) share one box."""
    boxes: dict[PixelBox, list[Region]] = {}
    for region in facts.regions:
        boxes.setdefault(region.union, []).append(region)
    return boxes


def roc_turn(facts: Facts, box: PixelBox, name: str, rng: random.Random | None) -> Turn:
    region = text_region(box, facts.size)
    if rng is None:
        question = referring_question(region)
    else:
        question = _pick(ROC_QUESTIONS, rng).format(region=region)
    return Turn("RO", question, _fill(_pick(ROC_ANSWERS, rng), name))


def rc_turn(facts: Facts, box: PixelBox, names: list[str], rng: random.Random | None) -> Turn:
    region = text_region(box, facts.size)
    question = (
        caption_question(region) if rng is None else _pick(RC_QUESTIONS, rng).format(region=region)
    )
    listed = join_names(names)
    answer = _pick(RC_ANSWERS, rng).format(
        names=listed,
        Names=_capital(listed),
        size=_size_word(box, facts),
        position=position_words(box, facts.width, facts.height),
        **{"is": "are" if len(names) > 1 or is_plural(names[0]) else "is"},
    )
    others = _overlapping(facts, box, names)
    if others:
        answer += RC_OTHERS.format(others=join_names(others))
    return Turn("GC", question, answer)


def _overlapping(facts: Facts, box: PixelBox, names: list[str]) -> list[str]:
    """Other objects whose boxes cover a good share of this one, in region order."""
    found: list[str] = []
    for region in facts.regions:
        name = readable(region.label)
        if name in names or name in found:
            continue
        if any(box.overlap(c) >= OVERLAP_SHARE * box.area for c in region.components):
            found.append(name)
    return found


def mia_turn(facts: Facts, rng: random.Random | None) -> Turn:
    question = analysis_question() if rng is None else _pick(MIA_QUESTIONS, rng)
    return Turn("MII", question, _mia_answer(facts, rng))


def _mia_answer(facts: Facts, rng: random.Random | None) -> str:
    by_size = sorted(_grouped(facts).items(), key=lambda kv: -sum(r.pixels for r in kv[1]))
    names = [name for name, _ in by_size]
    if len(names) > MIA_MAX_NAMES:
        shows = MIA_MANY.format(count=len(names), names=join_names(names[: MIA_MAX_NAMES - 2]))
    else:
        shows = _pick(MIA_SHOWS, rng).format(names=join_names(names))
    sentences = [_intro(facts), shows]
    for name, regions in by_size[:MIA_MAX_POSITIONS]:
        if len(regions) == 1 and len(regions[0].components) == 1:
            where = position_words(regions[0].union, facts.width, facts.height)
            sentences.append(_fill(_pick(MIA_WHERE, rng), name, position=where))
    return " ".join(sentences)


def _intro(facts: Facts) -> str:
    """ "This is an axial CT slice." / "This is a CT image of the abdomen region."."""
    modality = MODALITY_WORDS.get(facts.modality, facts.modality)
    if facts.plane:
        return f"This is {article(facts.plane)} {facts.plane} {modality} slice."
    where = f" of the {facts.body_part} region" if facts.body_part else ""
    return f"This is {article(modality)} {modality} image{where}."


# -- per image ------------------------------------------------------------------------------


def _all_turns(facts: Facts, rng: random.Random | None) -> dict[str, list[Turn]]:
    """Every positive turn of each task: VG per label, ROC and RC per mask box, one MIA."""
    turns: dict[str, list[Turn]] = {"VG": [], "RO": [], "GC": [], "MII": []}
    for name, regions in _grouped(facts).items():
        turns["VG"].append(vg_turn(facts, name, regions, rng))
    for box, regions in _regions_by_box(facts).items():
        names = list(dict.fromkeys(readable(r.label) for r in regions))
        if len(names) == 1:  # one box with two names cannot be asked what it is
            turns["RO"].append(roc_turn(facts, box, names[0], rng))
        turns["GC"].append(rc_turn(facts, box, names, rng))
    if facts.regions:
        turns["MII"].append(mia_turn(facts, rng))
    return turns


def _negative(facts: Facts, rng: random.Random, rate: float, *, style: random.Random | None):
    """One not-present VG turn with probability ``rate`` (always for an image without any
    object), asking for a label known to be absent; None otherwise."""
    if not facts.absent or (facts.regions and rng.random() >= rate):
        return None
    return absent_turn(readable(rng.choice(facts.absent)), style)


def train_turns(facts: Facts, rng: random.Random, negative_rate: float) -> list[Turn]:
    """All turns for training, wordings drawn from the pools, in a shuffled mix."""
    turns = [t for task_turns in _all_turns(facts, rng).values() for t in task_turns]
    negative = _negative(facts, rng, negative_rate, style=rng)
    if negative is not None:
        turns.append(negative)
    rng.shuffle(turns)
    return turns


def test_turns(facts: Facts, rng: random.Random, negative_rate: float) -> dict[str, list[Turn]]:
    """Turns for the test files by task, in the app's wording; the draw of negatives uses
    ``rng``, the wording does not."""
    turns = _all_turns(facts, None)
    negative = _negative(facts, rng, negative_rate, style=None)
    if negative is not None:
        turns["VG"].append(negative)
    return turns


def first_question(name: str, question: str) -> str:
    """The first question of an item: the image tag, then the question."""
    return IMAGE_TAG.format(name=name) + question
