"""Words a model card is matched on (modalities, body regions, structures, the structure a
question asks about) and the warnings written from them. `birdview.core.model_card` uses it.

Matching is lenient on purpose: a warning that fires on the model's own training data would
teach people to ignore warnings, so anything this module cannot read gives no warning.
"""

from __future__ import annotations

import re

from birdview.core.modalities import MODALITY_WORDS

__all__ = [
    "body_part_outside",
    "body_part_warning",
    "listing",
    "modality_key",
    "modality_warning",
    "modality_word",
    "question_target",
    "structure_known",
    "structure_warning",
]

# Modality keys are Med-GRIT's (plus the two the trainer adds).
_WORDS = MODALITY_WORDS
_ALIASES = {
    "mri": "mr",
    "magnetic resonance": "mr",
    "x ray": "x",
    "xray": "x",
    "radiograph": "x",
    "radiography": "x",
    "cr": "x",
    "dx": "x",
    "dr": "x",
    "rg": "x",
    "pt": "pet",
    "us": "ultrasound",
    "es": "endoscopy",
    "xc": "dermoscopy",
    "op": "fundus",
    "sm": "pathology",
    "histology": "pathology",
    "opt": "oct",
    "computed tomography": "ct",
}
# Codes that say nothing about what the image shows.
_UNKNOWN_MODALITIES = {"", "ot", "other", "unknown", "sc"}


def modality_key(text: str) -> str:
    """A modality's key ("ct", "mr", "x"...) from a DICOM code, a Med-GRIT key or a word;
    "" when it says nothing ("OT"); otherwise the text itself, lower case."""
    words = " ".join(re.split(r"[\s_\-]+", str(text).strip().lower()))
    if words in _UNKNOWN_MODALITIES:
        return ""
    if words in _WORDS:
        return words
    return _ALIASES.get(words, _ALIASES.get(words.replace(" ", ""), words))


def modality_word(text: str) -> str:
    """A modality as people write it: "MR" for "mr", "X-ray" for "DX"; unknown ones as given."""
    key = modality_key(text)
    return _WORDS.get(key, str(text).strip())


# -- body regions ---------------------------------------------------------------------------

# DICOM Body Part Examined terms (and plain words) grouped by the region they lie in.
_REGIONS = {
    "head": ("head", "brain", "skull", "face", "orbit", "eye", "sinus"),
    "neck": ("neck", "cspine", "larynx", "thyroid"),
    "chest": ("chest", "thorax", "lung", "heart", "breast", "tspine", "rib", "mediastinum"),
    "abdomen": ("abdomen", "abdominal", "liver", "kidney", "pancreas", "spleen", "lspine"),
    "pelvis": ("pelvis", "hip", "prostate", "bladder", "sspine", "sacrum", "coccyx"),
    "upper limb": (
        "shoulder", "arm", "humerus", "elbow", "forearm", "wrist", "hand", "finger", "thumb",
    ),
    "lower limb": ("leg", "femur", "thigh", "knee", "tibia", "ankle", "foot", "toe", "calf"),
}  # fmt: skip
_REGION_OF = {word: region for region, words in _REGIONS.items() for word in words}
# Longest first: "forearm" before "arm", "lspine" before "spine".
_BODY_WORDS = sorted(_REGION_OF, key=len, reverse=True)


def _regions_in(text: str) -> list[tuple[str, str]]:
    """(word, region) for each known body word inside ``text`` ("CHESTABDOMEN" → chest and
    abdomen), longest words first, each stretch of text used once."""
    rest = re.sub(r"[^a-z]", "", str(text).lower())
    found = []
    for word in _BODY_WORDS:
        if word in rest:
            found.append((word, _REGION_OF[word]))
            rest = rest.replace(word, " ")
    return found


def body_part_outside(body_part: str, regions: tuple[str, ...]) -> str:
    """The body part, as a word, when it lies outside every trained region; "" when it lies
    inside one, or either side cannot be read ("PARTIALBODY", "whole body")."""
    trained = [_regions_in(region) for region in regions]
    if not regions or any(not found for found in trained):
        return ""
    study = _regions_in(body_part)
    if not study:
        return ""
    trained_regions = {region for found in trained for _, region in found}
    if any(region in trained_regions for _, region in study):
        return ""
    return study[0][0]


# -- structures -----------------------------------------------------------------------------

_SIDES = {"left", "right", "bilateral", "both"}
_ARTICLES = {"the", "a", "an", "any", "all", "of"}
_KEEP_S = ("ss", "us", "is", "as", "ys")
_IRREGULAR = {"vertebrae": "vertebra", "bronchi": "bronchus", "pelves": "pelvis"}


def _singular(word: str) -> str:
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(_KEEP_S):
        return word[:-1]
    return word


def _words(text: str) -> tuple[str, ...]:
    """A name's words for matching: lower case, without sides, articles or plurals."""
    raw = re.split(r"[^a-z0-9]+", str(text).lower())
    return tuple(_singular(w) for w in raw if w and w not in _SIDES and w not in _ARTICLES)


def _contains(longer: tuple[str, ...], shorter: tuple[str, ...]) -> bool:
    size = len(shorter)
    return any(longer[i : i + size] == shorter for i in range(len(longer) - size + 1))


def structure_known(target: str, structures: tuple[str, ...]) -> bool:
    """Whether ``target`` names one of ``structures``: the same words once case, plurals,
    sides and articles are set aside, or the one's words inside the other's ("T11" in
    "T11 vertebra", "portal vein" in "portal vein and splenic vein")."""
    wanted = _words(target)
    if not wanted:
        return True
    for structure in structures:
        known = _words(structure)
        if known and (_contains(known, wanted) or _contains(wanted, known)):
            return True
    return False


# -- the structure a question asks about ----------------------------------------------------

_PLACE = r"(?:\s+(?:in|on|within|of)\s+(?:the|this)\s+(?:image|slice|picture|scan|study|view))?"
_TAIL = r"(?:\s+(?:located|situated|found|seen|visible|shown|positioned))?" + _PLACE
_END = r"\s*(?:,?\s*and\s+give\s+its\s+bounding\s+box)?\s*[?.!]*\s*$"
_ASKS = (
    r"^(?:where|which\s+part\s+of\s+the\s+image)\s+(?:is|are)\s+(?P<t>.+?)" + _TAIL + _END,
    r"^(?:please\s+|can\s+you\s+|could\s+you\s+)?(?:find|locate|show(?:\s+me)?"
    r"(?:\s+the\s+(?:position|location)\s+of)?|mark|outline|detect|segment|highlight|"
    r"point\s+(?:to|at))\s+(?P<t>.+?)" + _PLACE + _END,
    r"^(?:is|are)\s+there\s+(?P<t>.+?)" + _PLACE + _END,
)
_ASK_RES = tuple(re.compile(pattern, re.IGNORECASE) for pattern in _ASKS)
# Words that point at the drawn box or the whole image, not at a named structure.
_POINTERS = {"this", "it", "here", "there", "that", "region", "box", "anything", "something"}
_MAX_TARGET_WORDS = 6


def question_target(question: str) -> str:
    """The structure a grounding question names ("Where is the left kidney located in the
    image?" → "left kidney"); "" when the question names none this can recognise."""
    text = " ".join(str(question).split())
    for pattern in _ASK_RES:
        match = pattern.match(text)
        if match:
            return _clean_target(match.group("t"))
    return ""


def _clean_target(text: str) -> str:
    words = text.strip(" ,.;:").split()
    while words and words[0].lower() in _ARTICLES:
        words = words[1:]
    if not words or len(words) > _MAX_TARGET_WORDS:
        return ""
    if any(w.lower().strip(",.") in _POINTERS for w in words) or "<" in text or "{" in text:
        return ""
    return " ".join(words)


def listing(names: tuple[str, ...] | list[str], *, limit: int = 10) -> str:
    """ "CT", "CT and MR", "liver, spleen and aorta"; past ``limit`` names, the first ones
    and how many there are in all."""
    names = list(names)
    if len(names) > limit:
        return ", ".join(names[:limit]) + f", … ({len(names)} in all)"
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


# -- warnings ---------------------------------------------------------------------------------

_CAUTION = "treat its boxes with caution."


def modality_warning(modalities: tuple[str, ...], modality: str) -> str:
    """The warning when the study's modality is not among ``modalities`` ("" otherwise)."""
    study = modality_key(modality)
    if not modalities or not study:
        return ""
    if study in {modality_key(m) for m in modalities}:
        return ""
    trained = listing([modality_word(m) for m in modalities])
    return (
        f"This model was trained on {trained} only; this study is "
        f"{modality_word(modality)} — {_CAUTION}"
    )


def body_part_warning(regions: tuple[str, ...], body_part: str) -> str:
    """The warning when the study's body part lies outside ``regions`` ("" otherwise)."""
    outside = body_part_outside(body_part, regions)
    if not outside:
        return ""
    return (
        f"This model was trained on images of the {listing(regions)} only; this study "
        f"shows the {outside} — {_CAUTION}"
    )


def structure_warning(structures: tuple[str, ...], question: str) -> str:
    """The warning when the question names a structure not among ``structures``."""
    target = question_target(question)
    if not structures or not target or structure_known(target, structures):
        return ""
    return (
        f"'{target}' is not among the structures this model was trained on: "
        f"{listing(structures, limit=8)} — {_CAUTION}"
    )
