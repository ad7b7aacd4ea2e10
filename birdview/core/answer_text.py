"""`readable_answer`: a model's answer as people read it, box markup and special tokens out."""

from __future__ import annotations

import re

from birdview.core import families
from birdview.core.geometry import Plane

__all__ = ["readable_answer"]

_MARKUP = re.compile(r"<\|[a-z_]+\|>|</?(?:ref|box|quad)>")


# "located at ." once a JSON box is taken out: the sentence points at the box drawn instead.
_DANGLING = re.compile(r"\b(at|in)\s*([.:]?)\s*$")


def readable_answer(text: str, family: str = "") -> str:
    """The answer as people read it: box markup replaced by the box's label, or by "the box
    shown" where a sentence would end on "at" (the boxes are listed and drawn separately),
    special tokens removed, also mid-stream. An answer that is nothing but boxes (a JSON
    block) reads as their labels."""
    codec = families.get(family).codec if family in families.keys() else None
    labels: list[str] = []
    if codec is not None:
        # Only the text is kept, so any sizes do; pixel-unit families need the model's too.
        size = (1000, 1000)
        parsed = codec.parse(text, size, plane=Plane.AXIAL, slice_index=0, model_size_px=size)
        text = parsed.text_without_boxes
        labels = list(dict.fromkeys(box.label or "the box shown" for box in parsed.boxes))
        if parsed.boxes:
            text = _DANGLING.sub(lambda m: f"{m.group(1)} the box shown{m.group(2) or '.'}", text)
    readable = " ".join(_MARKUP.sub("", text).split())
    return readable or ", ".join(labels)
