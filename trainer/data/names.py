"""Words: readable label names, modality keys and the phrases the answers are built from.

Label names arrive as the sources spell them: TotalSegmentator and SA-Med2D write
``lung_lower_lobe_left``, BiomedParse writes ``left+heart+ventricle``. Answers should read like
English, so `readable` rewrites them ("left lower lobe of the lung", "T9 vertebra").

Modality keys are Med-GRIT's (the image file name up to its first underscore, see
`trainer.medgrit.MODALITIES`); modalities Med-GRIT lacks keep a key of their own
(``pathology``, ``oct``) and the data card lists them.
"""

from __future__ import annotations

import re

from birdview.core.modalities import DICOM_MODALITIES, MODALITY_WORDS

__all__ = [
    "EXTRA_MODALITIES",
    "MODALITY_WORDS",
    "article",
    "file_prefix",
    "is_plural",
    "join_names",
    "modality_from_dicom",
    "modality_from_words",
    "readable",
    "the",
]

EXTRA_MODALITIES = ("pathology", "oct")

# Words in file and folder names that name a modality.
_MODALITY_ALIASES = {
    "ct": "ct",
    "mr": "mr",
    "mri": "mr",
    "flair": "mr",
    "t1": "mr",
    "t2": "mr",
    "x-ray": "x",
    "xray": "x",
    "cxr": "x",
    "pet": "pet",
    "endoscope": "endoscopy",
    "endoscopy": "endoscopy",
    "colonoscopy": "endoscopy",
    "dermoscopy": "dermoscopy",
    "fundus": "fundus",
    "ultrasound": "ultrasound",
    "pathology": "pathology",
    "histology": "pathology",
    "oct": "oct",
}

_SIDES = ("left", "right")
# Organs whose parts read better as "<part> of the <organ>".
_OF_ORGANS = ("lung", "heart")
_VERTEBRA = re.compile(r"^[CTLS]\d{1,2}$")
# Known misspellings and Latin names in source labels.
_FIXES = {
    "public symphysis": "pubic symphysis",
    "autochthon": "autochthonous back muscle",
    "clavicula": "clavicle",
}


def readable(label: str) -> str:
    """A label as words: "lung_lower_lobe_left" → "left lower lobe of the lung",
    "vertebrae_T9" → "T9 vertebra", "hip_left" → "left hip", "rib_left_9" → "left 9th rib",
    "left+heart+ventricle" → "left heart ventricle". Case is kept ("COVID-19 infection")."""
    words = [w for w in re.split(r"[_+\s]+", str(label).strip()) if w]
    if not words:
        return str(label).strip()
    if len(words) == 2 and words[0].lower() == "vertebrae" and _VERTEBRA.match(words[1]):
        return f"{words[1]} vertebra"
    sides = [w for w in words if w.lower() in _SIDES]
    rest = [w for w in words if w.lower() not in _SIDES]
    side = sides[0].lower() + " " if len(sides) == 1 else ""
    if len(sides) != 1:
        rest = words
    return side + _body(rest)


def _body(words: list[str]) -> str:
    if len(words) == 2 and words[0].lower() == "rib" and words[1].isdigit():
        return f"{_ordinal(int(words[1]))} rib"
    if len(words) > 1 and words[0].lower() in _OF_ORGANS:
        return f"{_fixed(' '.join(words[1:]))} of the {words[0]}"
    return _fixed(" ".join(words))


def _fixed(text: str) -> str:
    return _FIXES.get(text.lower(), text)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def is_plural(name: str) -> bool:
    """Whether a readable name takes "are": "costal cartilages", "inflammatory cells"; not
    "pancreas", "uterus", "glandular structure"."""
    last = name.split()[-1].lower() if name.split() else ""
    if " and " in f" {name.lower()} ":
        return True
    return last.endswith("s") and not last.endswith(("ss", "us", "as", "is", "ys"))


def the(name: str) -> str:
    """ "the liver"; a name that already starts with an article is kept."""
    return name if name.lower().startswith(("the ", "a ", "an ")) else f"the {name}"


def article(word: str) -> str:
    """ "a" or "an" by sound: "an axial", "an MR", "an X-ray", "an OCT", "a CT", "a PET"."""
    if not word:
        return "a"
    spelled = word.split("-")[0]
    if spelled.isupper() and len(spelled) <= 3 and spelled != "PET":
        return "an" if spelled[0] in "AEFHILMNORSX" else "a"
    return "an" if word[0].lower() in "aeiou" else "a"


def join_names(names: list[str]) -> str:
    """ "the liver", "the liver and the spleen", "the liver, the spleen and the aorta"."""
    phrases = [the(n) for n in names]
    if len(phrases) <= 1:
        return "".join(phrases)
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def modality_from_words(text: str) -> str | None:
    """The modality key named by a file or folder name ("09_MRI-FLAIR_brain" → "mr",
    "15_X-Ray_chest" → "x", "brats_mr" → "mr"); None when no word names one. The first word
    that names one wins."""
    lowered = str(text).lower()
    for token in re.split(r"[^a-z0-9-]+", lowered):
        if token in _MODALITY_ALIASES:
            return _MODALITY_ALIASES[token]
        for part in token.split("-"):
            if part in _MODALITY_ALIASES:
                return _MODALITY_ALIASES[part]
    return None


def modality_from_dicom(code: str) -> str | None:
    """The modality key of a DICOM modality code ("CT" → "ct", "PT" → "pet"), else None."""
    # Codes are only read from headers, never from names ("sm" and "us" are too common in
    # file names to mean anything there).
    return DICOM_MODALITIES.get(str(code).strip().upper())


def file_prefix(modality: str) -> str:
    """The start of an image file name, SA-Med2D style: "ct_00", "mr_00", and "x_ray" for
    X-ray (as Med-GRIT names them), so that the name up to its first underscore is the key."""
    return "x_ray" if modality == "x" else f"{modality}_00"
