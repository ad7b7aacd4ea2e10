"""The client's segmentation methods (no torch), mixed into `InferenceClient`.

    client.load_segmenter(WorkerConfig(sam_folder)).result()
    reply = client.segment(image_rgb, box).result()            # SegmentReply
    mask = reply.mask.unpack()
    done = client.propagate(volume, box=box, first=0, last=19, on_slice=show).result()
    # done.slices: one PropagateSlice per slice, in slice order

After a worker restart the client loads the last segmenter again, as it does the language
model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from birdview.core.box import Box
from birdview.core.geometry import Plane
from birdview.core.masks import PackedMask
from birdview.core.model_input import volume_intensity_range
from birdview.core.volume import Volume
from birdview.inference._client_requests import Pending, RequestHandle, Result
from birdview.inference.protocol import WorkerConfig
from birdview.inference.segmentation.protocol import (
    LoadSegmenterRequest,
    PropagateRequest,
    SegmentRequest,
)

__all__ = ["SegmentationMethods"]


class SegmentationMethods:
    """Requires the host's ``_submit``, ``_lock``, ``_last_segmenter_load`` and
    ``segmenter_loaded`` (see `InferenceClient`)."""

    _submit: Callable[[Pending], RequestHandle]
    _lock: Any
    _last_segmenter_load: LoadSegmenterRequest | None
    segmenter_loaded: Any

    def load_segmenter(
        self, config: WorkerConfig, *, on_done: Callable[[Result], None] | None = None
    ) -> RequestHandle:
        """Load a segmentation model (replacing any; the language model stays); the result
        is `SegmenterLoaded` or `WorkerFailure`."""
        request = LoadSegmenterRequest(config)
        with self._lock:
            self._last_segmenter_load, self.segmenter_loaded = request, None
        return self._submit(Pending(request, RequestHandle(request.request_id), on_done))

    def segment(
        self,
        image_rgb: np.ndarray,
        box: Box | None = None,
        *,
        text: str = "",
        min_score: float = 0.5,
        on_done: Callable[[Result], None] | None = None,
    ) -> RequestHandle:
        """Segment what ``box`` frames (box-prompted engines), or the instances of what
        ``text`` names scoring at least ``min_score`` (SAM3), on one (rows, cols, 3) uint8
        slice (`model_input.render_for_model`); the result is `SegmentReply` or
        `WorkerFailure`."""
        request = SegmentRequest(np.asarray(image_rgb), box, text=text, min_score=min_score)
        return self._submit(Pending(request, RequestHandle(request.request_id), on_done))

    def propagate(
        self,
        volume: Volume,
        *,
        first: int,
        last: int,
        plane: Plane | str = Plane.AXIAL,
        start: int | None = None,
        box: Box | None = None,
        mask: np.ndarray | PackedMask | None = None,
        boxes: Sequence[Box] = (),
        text: str = "",
        min_score: float = 0.5,
        intensity_range: tuple[float, float] | None = None,
        on_slice: Callable[[Any], None] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        on_done: Callable[[Result], None] | None = None,
    ) -> RequestHandle:
        """Carry a mask through slices ``first``..``last`` of ``plane`` from a ``box`` (on its
        own slice), a ``mask`` on slice ``start``, one box per slice (``boxes``, e.g. a
        sweep's), or ``text`` (SAM3: every slice, instances scoring ``min_score``; VoxTell:
        the whole volume in one pass, then its slices of the range). Each
        slice's `PropagateSlice` goes to ``on_slice`` as it is made, and VoxTell's
        ``(patches done, patches in all)`` to ``on_progress`` before them; the result is
        `PropagateReply` with every slice, in order (partial with ``cancelled=True`` after a
        cancel), or `WorkerFailure`.

        ``intensity_range`` is the model input's (default `volume_intensity_range`; pass the
        one the viewer computed when the volume opened).
        """
        if isinstance(mask, np.ndarray):
            mask = PackedMask.pack(mask)
        if start is None:
            start = box.slice_index if box is not None else first
        request = PropagateRequest.from_volume(
            volume,
            intensity_range=intensity_range or volume_intensity_range(volume),
            plane=Plane(plane),
            first=int(first),
            last=int(last),
            start=int(start),
            box=box,
            mask=mask,
            boxes=tuple(boxes),
            text=text,
            min_score=float(min_score),
        )
        handle = RequestHandle(request.request_id)
        return self._submit(
            Pending(request, handle, on_done, on_progress=on_progress, on_slice=on_slice)
        )
