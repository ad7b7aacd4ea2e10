"""The worker's segmentation requests: load, segment one slice, propagate over slices.

Called from `birdview.inference.worker` on its main loop, one request at a time; ``send``
streams `PropagateSlice` messages (and a volumetric engine's `SweepProgress`, one per
sliding-window patch) and ``cancel`` says a `CancelRequest` came.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from birdview.core.box import Box
from birdview.core.geometry import Plane, extract_slice, slice_count
from birdview.core.mask_set import plane_slicer
from birdview.core.masks import PackedMask
from birdview.core.model_input import render_for_model
from birdview.inference._worker_parts import BadRequest, memory_bytes
from birdview.inference.protocol import SweepProgress
from birdview.inference.segmentation._base import SliceMask
from birdview.inference.segmentation.protocol import (
    LoadSegmenterRequest,
    PropagateReply,
    PropagateRequest,
    PropagateSlice,
    SegmenterLoaded,
    SegmentReply,
    SegmentRequest,
)

__all__ = ["Segmenter"]

logger = logging.getLogger(__name__)

_MAX_TEXT = 200  # a concept's name, not a report


class Segmenter:
    """The worker's segmentation model (none until a `LoadSegmenterRequest`)."""

    def __init__(self) -> None:
        self.loaded: Any = None

    def load(self, request: LoadSegmenterRequest) -> SegmenterLoaded:
        import torch

        from birdview.inference.segmentation.loader import load_segmenter

        config = request.config
        if config.adapter_dir is not None or config.trust_remote_code:
            raise BadRequest(
                "Unable to load a segmenter with an adapter or remote code; give the "
                "checkpoint folder alone"
            )
        if config.torch_threads:
            torch.set_num_threads(int(config.torch_threads))
        self.loaded = None  # two may not fit
        loaded = load_segmenter(config.model_dir, precision=config.precision, device=config.device)
        self.loaded = loaded
        memory = memory_bytes(loaded.engine.model)
        logger.info(
            "segmenter %s (%s on %s) in %.1f s, %d MB",
            loaded.model_type,
            loaded.precision,
            loaded.device,
            loaded.seconds,
            memory // 2**20,
        )
        return SegmenterLoaded(
            request_id=request.request_id,
            engine=loaded.key,
            model_type=loaded.model_type,
            precision=loaded.precision,
            device=loaded.device,
            notices=tuple(loaded.notices),
            seconds=float(loaded.seconds),
            memory_bytes=memory,
            checkpoint_sha256=loaded.checkpoint_sha256,
        )

    def segment(self, request: SegmentRequest) -> SegmentReply:
        engine = self._engine()
        if getattr(engine, "volumetric", False):
            raise BadRequest(
                "Unable to segment one slice with VoxTell as it segments the whole volume; "
                "send a PropagateRequest with the text"
            )
        image = _checked_image(request.image_rgb)
        started = time.perf_counter()
        if request.text or request.box is None:
            text, min_score = self._checked_text(request.text, request.min_score)
            found = engine.segment_text(image, text, min_score)
        else:
            self._check_takes("box")
            found = engine.segment(image, _clamped(request.box, image.shape).edges_px)
        return SegmentReply(
            request_id=request.request_id,
            mask=PackedMask.pack(found.mask),
            score=found.score,
            seconds=time.perf_counter() - started,
        )

    def propagate(
        self,
        request: PropagateRequest,
        send: Callable[[Any], None],
        cancel: Callable[[], bool],
    ) -> PropagateReply:
        from birdview.inference.segmentation.propagate import propagate

        engine = self._engine()
        volume, plane = _checked_volume(request), _checked_plane(request.plane)
        first, last, start = _checked_range(request, volume, plane)
        shape = extract_slice(volume, plane, first).shape[:2]
        text, min_score = "", 0.5
        if request.text:
            text, min_score = self._checked_text(request.text, request.min_score)
            box, mask, boxes = None, None, ()
        else:
            self._check_takes("box")
            box, mask, boxes = _checked_prompt(request, plane, shape, first, last)
        rid = request.request_id
        started = time.perf_counter()

        def emit(s: int, found: Any) -> None:
            send(PropagateSlice(rid, int(s), PackedMask.pack(found.mask), found.score))

        def patches(done: int, total: int) -> None:  # a volumetric engine's progress
            send(SweepProgress(rid, done, total))

        if getattr(engine, "volumetric", False):
            span = (first, last)
            method = _whole_volume(engine, volume, plane, span, text, emit, cancel, patches)
            return PropagateReply(rid, method, time.perf_counter() - started, cancel())
        method = propagate(
            engine,
            lambda s: render_for_model(volume, plane, s, intensity_range=request.intensity_range),
            first=first,
            last=last,
            start=start,
            box=box,
            mask=mask,
            boxes=boxes,
            emit=emit,
            cancel=cancel,
            text=text,
            min_score=min_score,
        )
        return PropagateReply(rid, method, time.perf_counter() - started, cancelled=cancel())

    def _check_takes(self, prompt: str) -> None:
        from birdview.inference.segmentation import engines

        known = engines.for_model_type(self.loaded.model_type)
        if prompt not in known.prompts:
            takes = " or ".join(f"{p} prompts" for p in known.prompts)
            raise BadRequest(
                f"Unable to segment with a {prompt} prompt as {known.title} takes {takes}"
            )

    def _checked_text(self, text: Any, min_score: Any) -> tuple[str, float]:
        self._check_takes("text")
        if not isinstance(text, str) or not text.strip():
            raise BadRequest("Unable to segment as the text prompt is empty; name a structure")
        if len(text) > _MAX_TEXT:
            raise BadRequest(
                f"Unable to segment as the text prompt has {len(text)} characters; at most "
                f"{_MAX_TEXT}"
            )
        try:
            score = float(min_score)
        except (TypeError, ValueError):
            score = float("nan")
        if not 0.0 <= score <= 1.0:
            raise BadRequest(f"Unable to segment as min_score {min_score!r} is not in 0..1")
        return text.strip(), score

    def _engine(self) -> Any:
        if self.loaded is None:
            raise BadRequest(
                "Unable to segment as no segmentation model is loaded; send a "
                "LoadSegmenterRequest first"
            )
        return self.loaded.engine


def _whole_volume(engine, volume, plane: Plane, span, text: str, emit, cancel, patches) -> str:
    """A volumetric engine (VoxTell): one pass over the whole volume, its progress sent per
    sliding-window patch, then the asked slices of ``plane`` streamed as a propagation's
    (none when cancelled)."""
    mask = engine.segment_volume(volume, text, cancel, patches)
    if mask is not None:
        for s in range(span[0], span[1] + 1):
            emit(s, SliceMask(mask[plane_slicer(plane, s, mask.shape)], None))
    return "volume"


def _checked_image(image: Any) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", type(image).__name__)
        raise BadRequest(f"Unable to segment as the image is {shape}; expected (rows, cols, 3)")
    if image.dtype != np.uint8:
        raise BadRequest(f"Unable to segment as the image is {image.dtype}; expected uint8")
    return image


def _clamped(box: Any, shape: tuple[int, ...]) -> Box:
    if not isinstance(box, Box):
        raise BadRequest(f"Unable to segment as the prompt is a {type(box).__name__}, not a Box")
    try:
        return box.clamped(shape[1], shape[0])
    except ValueError as exc:
        raise BadRequest(f"Unable to segment as the box is outside the slice: {exc}") from exc


def _checked_volume(request: PropagateRequest):
    try:
        volume = request.to_volume()
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"Unable to propagate as the volume is malformed: {exc}") from exc
    if volume.is_rgb:
        raise BadRequest("Unable to propagate through an RGB image; it has one slice")
    return volume


def _checked_plane(plane: Any) -> Plane:
    try:
        return Plane(plane)
    except ValueError as exc:
        raise BadRequest(f"Unable to propagate as {plane!r} is not a plane") from exc


def _checked_range(request: PropagateRequest, volume, plane: Plane) -> tuple[int, int, int]:
    count = slice_count(volume, plane)
    first, last, start = int(request.first), int(request.last), int(request.start)
    if not 0 <= first <= last < count:
        raise BadRequest(
            f"Unable to propagate over {plane.value} slices {first}..{last} as the volume has "
            f"slices 0..{count - 1}"
        )
    if not request.boxes and not first <= start <= last:
        raise BadRequest(f"Unable to propagate from slice {start}, outside {first}..{last}")
    return first, last, start


def _checked_prompt(request: PropagateRequest, plane: Plane, shape, first: int, last: int):
    given = [p for p in (request.box, request.mask, request.boxes or None) if p is not None]
    if len(given) != 1:
        raise BadRequest(
            "Unable to propagate as it needs exactly one prompt (a box, a mask, or one box per "
            f"slice); it got {len(given)}"
        )
    if request.mask is not None:
        try:
            mask = request.mask.unpack()
        except (AttributeError, ValueError) as exc:
            raise BadRequest(f"Unable to propagate as the mask is unreadable: {exc}") from exc
        if mask.shape != tuple(shape):
            raise BadRequest(
                f"Unable to propagate a {mask.shape!r} mask on {tuple(shape)!r} slices"
            )
        if not mask.any():
            raise BadRequest("Unable to propagate an empty mask; draw or segment one first")
        return None, mask, ()
    if request.box is not None:
        box = _clamped(request.box, shape)
        if box.slice_index != request.start or box.plane is not plane:
            raise BadRequest(
                f"Unable to propagate as the box is on {box.plane.value} slice "
                f"{box.slice_index}, not the start ({plane.value} slice {request.start})"
            )
        return box.edges_px, None, ()
    boxes = []
    for b in request.boxes:
        if not isinstance(b, Box) or b.plane is not plane:
            raise BadRequest(
                f"Unable to propagate with a box that is not on the {plane.value} plane"
            )
        if first <= b.slice_index <= last:
            boxes.append(_clamped(b, shape))
    if not boxes:
        raise BadRequest(f"Unable to propagate as no box lies on slices {first}..{last}")
    return None, None, tuple(boxes)
