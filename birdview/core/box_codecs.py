"""Box text, both ways: the machinery every model family's codec is an instance of.

A family (`birdview.core.families`) declares its codec with four choices:

* ``tags`` (Med-GRIT's storage form, Qwen-VL v1): ``<ref>liver</ref><box>(x1,y1),(x2,y2)</box>``
* ``token_tags``: ``<|object_ref_start|>liver<|object_ref_end|>``
  ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>``
* ``json``: a fenced list of ``{"<key>": [four numbers], "label": "liver"}``

* ``json_key`` and ``order``: ``bbox_2d`` holds x first (x1, y1, x2, y2), ``box_2d`` y first
  (y0, x0, y1, x1); the parser reads each key in its own order whatever the codec writes.
* ``relative``: numbers on a 0–1000 grid, or (False) in pixels of the model's resized input;
  then the caller passes ``model_size_px`` from the processor (only it knows how it resizes).
* ``pad_to_square``: the grid spans the image padded to a square, centred (as the image is
  prepared before the processor), so a box maps back through the padding, not the aspect.

Quantisation: a pixel-edge coordinate x of a W-pixel-wide slice is written as the integer
``round(x / W * 1000)`` on the grid (Med-GRIT writes integers), and read back as
``v / 1000 * W``, so a round trip moves an edge by at most half a grid unit (W / 2000 px).
With padding, W is the square's side and x is shifted by the left padding first.

Parsing accepts every style's markup in any codec's text (fine-tuned models drift), reads the
numbers on the codec's own scale, and never raises for any text: see `BoxCodec.parse`.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from birdview.core import _box_parse
from birdview.core.box import Box
from birdview.core.geometry import Plane

__all__ = ["GRID", "MAX_BOXES", "MEDGRIT", "BoxCodec", "ParseResult", "square_padding"]

GRID = 1000
MAX_BOXES = 100

SizePx = tuple[float, float]
Style = Literal["tags", "token_tags", "json"]
Order = Literal["xy", "yx"]


@dataclass(frozen=True)
class ParseResult:
    """What `BoxCodec.parse` found.

    Attributes:
        boxes: the boxes read, inside the image, in order of appearance.
        dropped: one line per fragment that could not be read, quoting it, with the reason.
        text_without_boxes: the answer with box markup removed (labels of <ref> tags kept),
            for display.
    """

    boxes: list[Box] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    text_without_boxes: str = ""


@dataclass(frozen=True)
class BoxCodec:
    """How one model family writes boxes (see the module docstring).

    Attributes:
        family: the family's key in `birdview.core.families` ("medgrit" for the storage form).
        style: the markup it emits: Med-GRIT tags, special-token tags, or JSON.
        relative: True for the 0–1000 grid; False for pixels of the model's resized input.
        json_key: the JSON style's key ("bbox_2d" or "box_2d").
        order: "xy" when x comes first in the four numbers, "yx" when y does.
        pad_to_square: the grid spans the image padded to a centred square.
    """

    family: str
    style: Style
    relative: bool
    json_key: str = "bbox_2d"
    order: Order = "xy"
    pad_to_square: bool = False

    # -- writing -----------------------------------------------------------------------------

    def encode(
        self,
        boxes: Iterable[Box],
        image_size_px: SizePx,
        *,
        model_size_px: SizePx | None = None,
    ) -> str:
        """The markup the model would emit for ``boxes`` (the trainer's target): tags for
        consecutive boxes with the same label share one ref, as Qwen-VL writes them; JSON
        comes fenced, one object a line, as Qwen2.5/3-VL write it. In tag styles an unlabelled
        box after a labelled one reads back with that label (Qwen-VL's own convention).

        Raises:
            ValueError: a size is missing or not positive.
        """
        units = self._units(image_size_px, model_size_px)
        quantised = [(box.label, self._quantise(box, units)) for box in boxes]
        if self.style == "json":
            lines = [f"\t{self._json_object(values, label)}" for label, values in quantised]
            listed = "[\n" + ",\n".join(lines) + "\n]" if lines else "[]"
            return f"```json\n{listed}\n```"
        pieces, previous = [], None
        for label, values in quantised:
            if label and label != previous:
                pieces.append(self._ref(label))
            pieces.append(self._box_tag(values))
            previous = label
        return "".join(pieces)

    def encode_region(
        self, box: Box, image_size_px: SizePx, *, model_size_px: SizePx | None = None
    ) -> str:
        """How a drawn region is written inside a question: the box alone, never its label
        (the label may be what the question asks for).

        Raises:
            ValueError: a size is missing or not positive.
        """
        values = self._quantise(box, self._units(image_size_px, model_size_px))
        if self.style == "json":
            return self._json_object(values, "")
        return self._box_tag(values)

    def _json_object(self, values: tuple[int, int, int, int], label: str) -> str:
        x1, y1, x2, y2 = values
        numbers = [y1, x1, y2, x2] if self.order == "yx" else [x1, y1, x2, y2]
        item: dict[str, object] = {self.json_key: numbers}
        if label:
            item["label"] = label
        return json.dumps(item, ensure_ascii=False)

    def _ref(self, label: str) -> str:
        label = label.replace("<", " ").replace(">", " ")  # would end the tag early
        if self.style == "tags":
            return f"<ref>{label}</ref>"
        return f"<|object_ref_start|>{label}<|object_ref_end|>"

    def _box_tag(self, values: tuple[int, int, int, int]) -> str:
        x1, y1, x2, y2 = values
        coords = f"({x1},{y1}),({x2},{y2})"
        if self.style == "tags":
            return f"<box>{coords}</box>"
        return f"<|box_start|>{coords}<|box_end|>"

    def _quantise(self, box: Box, units: _Units) -> tuple[int, int, int, int]:
        """Integers on the text's scale, inside it; a box thinner than one unit keeps one
        unit so that it survives the round trip."""
        x1, x2 = _span(units.to_x(box.x1_px), units.to_x(box.x2_px), units.x_max)
        y1, y2 = _span(units.to_y(box.y1_px), units.to_y(box.y2_px), units.y_max)
        return (x1, y1, x2, y2)

    # -- reading -----------------------------------------------------------------------------

    def parse(
        self,
        text: str,
        image_size_px: SizePx,
        *,
        plane: Plane,
        slice_index: int,
        model_size_px: SizePx | None = None,
    ) -> ParseResult:
        """Every box in a model's answer, as `Box`es on the given slice.

        Never raises for any ``text``. Fragments that cannot be read (wrong count of numbers,
        NaN, zero area, cut off) go to ``dropped`` with a reason; swapped corners are put in
        order and flagged "swapped"; boxes reaching outside the image are clipped to it and
        flagged "clamped". A box without its own label takes the label of the last <ref>
        before it. At most the first 20 000 characters and `MAX_BOXES` boxes are read.

        Raises:
            ValueError: only for bad arguments: a size that is missing or not positive, a
                plane that is not one, a negative slice index.
            TypeError: the slice index is not an integer.
        """
        units = self._units(image_size_px, model_size_px)
        plane = Plane(plane)
        index = operator.index(slice_index)
        if index < 0:
            raise ValueError(f"Unable to parse boxes as slice index {index!r} is negative")
        found = _box_parse.scan(text)
        boxes: list[Box] = []
        for candidate in found.candidates:
            if len(boxes) == MAX_BOXES:
                found.drop(candidate.fragment, f"more than {MAX_BOXES} boxes; the rest ignored")
                break
            box_or_reason = _to_box(candidate, units, plane, index)
            if isinstance(box_or_reason, Box):
                boxes.append(box_or_reason)
            else:
                found.drop(candidate.fragment, box_or_reason)
        return ParseResult(boxes, found.dropped, found.text_without_boxes)

    # -- scale -------------------------------------------------------------------------------

    def _units(self, image_size_px: SizePx, model_size_px: SizePx | None) -> _Units:
        width, height = _checked_size("image_size_px", image_size_px)
        if self.relative and self.pad_to_square:
            side = max(width, height)
            left, top = square_padding(width, height)
            scale = GRID / side
            return _Units(scale, scale, GRID, GRID, width, height, left, top)
        if self.relative:
            scale_w = scale_h = float(GRID)
        elif model_size_px is None:
            raise ValueError(
                f"Unable to scale {self.family} boxes as model_size_px is missing; pass the "
                "(width, height) the processor resizes the image to"
            )
        else:
            scale_w, scale_h = _checked_size("model_size_px", model_size_px)
        return _Units(scale_w / width, scale_h / height, scale_w, scale_h, width, height)


@dataclass(frozen=True)
class _Units:
    """Text units per image pixel along x and y, the text's extent, the image's, and the
    padding before the image's first column and row (text = (pixel + padding) × units)."""

    x: float
    y: float
    x_max: float
    y_max: float
    width_px: float
    height_px: float
    left_px: float = 0.0
    top_px: float = 0.0

    def to_x(self, x_px: float) -> float:
        return (x_px + self.left_px) * self.x

    def to_y(self, y_px: float) -> float:
        return (y_px + self.top_px) * self.y


def square_padding(width_px: float, height_px: float) -> tuple[int, int]:
    """(left, top) padding that centres a width × height image in a square of its longer
    side; the odd pixel goes after (right or bottom), as ``numpy.pad`` of (d // 2, d - d // 2)
    puts it."""
    side = max(width_px, height_px)
    return int((side - width_px) // 2), int((side - height_px) // 2)


def _checked_size(name: str, size: Sequence[float] | None) -> SizePx:
    try:
        width, height = (float(v) for v in size)  # type: ignore[union-attr]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Unable to use {name} {size!r} as it is not (width, height)") from exc
    if not (math.isfinite(width) and math.isfinite(height) and width > 0 and height > 0):
        raise ValueError(f"Unable to use {name} {size!r} as it is not a positive (width, height)")
    return width, height


def _span(low: float, high: float, top: float) -> tuple[int, int]:
    """round() both ends into [0, top], at least one unit apart."""
    limit = int(math.floor(top))
    a = min(max(round(low), 0), limit)
    b = min(max(round(high), 0), limit)
    if b <= a:
        a, b = (a, a + 1) if a < limit else (limit - 1, limit)
    return a, b


def _to_box(candidate: _box_parse.Candidate, units: _Units, plane: Plane, index: int) -> Box | str:
    """A box in image pixels from four numbers on the text's scale, or why there is none."""
    if not all(math.isfinite(v) for v in candidate.numbers):
        return "a coordinate is not a finite number"
    x1, y1, x2, y2 = candidate.numbers
    x1, x2 = x1 / units.x - units.left_px, x2 / units.x - units.left_px
    y1, y2 = y1 / units.y - units.top_px, y2 / units.y - units.top_px
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        return "a coordinate is too large"
    if x1 == x2 or y1 == y2:
        return "the box has zero area"
    flags: list[str] = []
    if x1 > x2 or y1 > y2:
        x1, x2 = min(x1, x2), max(x1, x2)
        y1, y2 = min(y1, y2), max(y1, y2)
        flags.append("swapped")
    inside = (max(x1, 0.0), max(y1, 0.0), min(x2, units.width_px), min(y2, units.height_px))
    if not (inside[0] < inside[2] and inside[1] < inside[3]):
        return "the box lies outside the image"
    if inside != (x1, y1, x2, y2):
        flags.append("clamped")
    try:
        return Box(plane, index, *inside, label=candidate.label, flags=tuple(flags))
    except (TypeError, ValueError) as exc:  # not expected after the checks above
        return f"not a valid box ({exc})"


# The storage form of Med-GRIT data (and Qwen-VL v1's own): what the trainer reads and writes.
MEDGRIT = BoxCodec("medgrit", "tags", relative=True)
