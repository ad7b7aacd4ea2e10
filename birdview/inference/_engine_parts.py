"""What `birdview.inference.engine.Engine` answers with, the image it takes, and the hooks
it hands ``generate()``: the cancel check polled per token and the streamer that passes on
the answer piece by piece."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from birdview.core.box import Box
from birdview.core.families import Family


@dataclass(frozen=True)
class Answer:
    """What the model said.

    Attributes:
        text: the answer, markup kept, without the reasoning before it.
        boxes: the boxes in it, in pixels of the image that was asked about.
        dropped: box fragments that could not be read, with the reason.
        question: the question as sent (region written in), for the conversation history.
        n_new_tokens: tokens generated.
        seconds: time spent generating.
        cancelled: True when ``cancel()`` stopped the generation early.
        reasoning: the thought before the answer; "" when the model gave none.
        raw: everything generated, end-of-turn tokens removed.
    """

    text: str
    boxes: list[Box] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    question: str = ""
    n_new_tokens: int = 0
    seconds: float = 0.0
    cancelled: bool = False
    reasoning: str = ""
    raw: str = ""


@dataclass(frozen=True)
class SliceResult:
    """One slice's answer in a `Engine.sweep`."""

    slice_index: int
    boxes: list[Box]
    text: str


def clean_answer(text: str, family: Family) -> str:
    """The answer without the family's end-of-turn tokens."""
    for marker in family.chat.stop_tokens:
        text = text.replace(marker, "")
    return text


def model_size_px(processor: Any, width_px: int, height_px: int, family: Family) -> tuple[int, int]:
    """(width, height) of the image as ``family``'s processor resizes it: either an
    aspect-keeping ``smart_resize`` (multiples of patch_size × merge_size, pixel count within
    the processor's bounds) or the processor's fixed size."""
    image_processor = processor.image_processor
    if family.image.resize != "smart":
        size = getattr(image_processor, "size", None) or {}
        return int(size.get("width", width_px)), int(size.get("height", height_px))
    smart_resize = _function(family.image.smart_resize)
    factor = int(image_processor.patch_size) * int(image_processor.merge_size)
    size = getattr(image_processor, "size", None) or {}
    min_pixels = size.get("shortest_edge") or getattr(image_processor, "min_pixels", None)
    max_pixels = size.get("longest_edge") or getattr(image_processor, "max_pixels", None)
    height, width = smart_resize(
        int(height_px), int(width_px), factor=factor, min_pixels=min_pixels, max_pixels=max_pixels
    )
    return int(width), int(height)


def _function(reference: str) -> Callable[..., Any]:
    """The function a family names as "module:function"."""
    import importlib

    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def _checked_image(image_rgb: np.ndarray) -> np.ndarray:
    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"Unable to ask the model as the image is {image.dtype} {image.shape!r}, not "
            "(rows, cols, 3) uint8 RGB; render it with model_input.render_for_model"
        )
    if min(image.shape[:2]) < 1:
        raise ValueError(f"Unable to ask the model as the image {image.shape!r} is empty")
    if not image.flags.writeable or not image.flags.c_contiguous:
        image = np.array(image)  # torch.from_numpy warns on read-only arrays
    return image


class _CancelCriteria:
    """Stops generation when ``cancel()`` turns True (polled once per token)."""

    def __init__(self, cancel: Callable[[], bool] | None) -> None:
        self.cancel = cancel
        self.cancelled = False

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        if self.cancel is not None and not self.cancelled and self.cancel():
            self.cancelled = True
        return torch.full((input_ids.shape[0],), self.cancelled, dtype=torch.bool)


class _TextStreamer:
    """A transformers streamer (``put``/``end``) that hands ``on_token`` each new piece of
    the cleaned answer; pieces that end inside a multi-byte character wait for the rest."""

    def __init__(self, tokenizer: Any, on_token: Callable[[str], None], family: Family) -> None:
        self.tokenizer = tokenizer
        self.on_token = on_token
        self.family = family
        self.ids: list[int] = []
        self.sent = ""
        self.prompt_seen = False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:  # generate() first passes the prompt
            self.prompt_seen = True
            return
        self.ids.extend(int(v) for v in value.reshape(-1).tolist())
        self._send(final=False)

    def end(self) -> None:
        self._send(final=True)

    def _send(self, final: bool) -> None:
        text = clean_answer(self.tokenizer.decode(self.ids, skip_special_tokens=False), self.family)
        if not final and text.endswith("\ufffd"):
            return
        if text.startswith(self.sent) and len(text) > len(self.sent):
            piece, self.sent = text[len(self.sent) :], text
            self.on_token(piece)
