"""The segmentation messages between the viewer and the worker (no torch; see
`birdview.inference.protocol` for the rules every message follows).

=========================  ==========================================================
request                    final message (or `WorkerFailure`)
=========================  ==========================================================
`LoadSegmenterRequest`     `SegmenterLoaded`
`SegmentRequest`           `SegmentReply`
`PropagateRequest`         `PropagateReply` (after one `PropagateSlice` per slice;
                           VoxTell sends a `SweepProgress` per sliding-window patch
                           before its slices)
=========================  ==========================================================

Masks travel as `birdview.core.masks.PackedMask` (one bit a pixel). A propagation's slices
travel once, as they are made; the worker's `PropagateReply` carries none and the client puts
the streamed ones into the reply it hands on, in slice order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from birdview.core.box import Box
from birdview.core.geometry import Plane
from birdview.core.masks import PackedMask
from birdview.inference.protocol import VolumeFields, WorkerConfig, _read_only, new_request_id

__all__ = [
    "LoadSegmenterRequest",
    "PropagateReply",
    "PropagateRequest",
    "PropagateSlice",
    "SegmentReply",
    "SegmentRequest",
    "SegmenterLoaded",
]


@dataclass(frozen=True)
class LoadSegmenterRequest:
    """Load (or replace) the segmentation model; the language model stays as it is.
    ``config.adapter_dir`` and ``config.trust_remote_code`` must be unset."""

    config: WorkerConfig
    request_id: str = field(default_factory=new_request_id)


@dataclass(frozen=True, eq=False)
class SegmentRequest:
    """Segment what ``box`` frames on one rendered slice, or what ``text`` names.

    Attributes:
        image_rgb: (rows, cols, 3) uint8, as `birdview.core.model_input.render_for_model`
            makes it (the volume's intensity range, not the display window).
        box: the prompt of a box-prompted engine, in that image's pixels.
        text: the prompt of a text-prompted engine (SAM3): a concept, "liver".
        min_score: for text prompts, the least score an instance needs to be kept.
    """

    image_rgb: np.ndarray
    box: Box | None = None
    text: str = ""
    min_score: float = 0.5
    request_id: str = field(default_factory=new_request_id)

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_rgb", _read_only(self.image_rgb))


@dataclass(frozen=True, eq=False)
class PropagateRequest(VolumeFields):
    """Carry a mask through slices ``first``..``last`` of ``plane``.

    The prompt is one of: ``box`` on slice ``start`` (segmented there first), ``mask`` on
    slice ``start`` (e.g. a mask the user edited), ``boxes``: one box per slice, as a
    volume sweep finds them, each segmented on its own slice (``start`` unused), or
    ``text`` for a text-prompted engine, segmented on every slice (instances scoring at
    least ``min_score``) or, by a volumetric engine (VoxTell), in the whole volume at once,
    whose slices ``first``..``last`` then stream back.
    The volume travels as `VolumeFields` (its fields come first), rendered in the worker
    with ``intensity_range`` like `render_for_model`.
    """

    intensity_range: tuple[float, float]
    plane: Plane
    first: int
    last: int
    start: int = 0
    box: Box | None = None
    mask: PackedMask | None = None
    boxes: tuple[Box, ...] = ()
    text: str = ""
    min_score: float = 0.5
    request_id: str = field(default_factory=new_request_id)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "boxes", tuple(self.boxes))


@dataclass(frozen=True)
class SegmenterLoaded:
    """A segmentation model is loaded (``engine``: its key in `segmentation.engines`)."""

    request_id: str
    engine: str
    model_type: str
    precision: str
    device: str
    notices: tuple[str, ...]
    seconds: float
    memory_bytes: int
    checkpoint_sha256: str = ""


@dataclass(frozen=True)
class SegmentReply:
    """The mask on the slice asked about, at the image's size; ``score`` is the model's
    confidence (None when it gives none)."""

    request_id: str
    mask: PackedMask
    score: float | None
    seconds: float


@dataclass(frozen=True)
class PropagateSlice:
    """One slice's mask, streamed as soon as it is made."""

    request_id: str
    slice_index: int
    mask: PackedMask
    score: float | None


@dataclass(frozen=True)
class PropagateReply:
    """The end of a propagation.

    Attributes:
        slices: every slice's mask, in slice order (filled in by the client from the
            streamed `PropagateSlice` messages; empty as the worker sends it).
        method: "video" (the model's own memory), "chain" (each slice prompted with the box
            around the mask before it), "boxes" (a box per slice was given), "text" (every
            slice prompted with the same text) or "volume" (one 3D pass, VoxTell).
        cancelled: a cancel stopped it early; ``slices`` holds what was done.
    """

    request_id: str
    method: str
    seconds: float
    cancelled: bool = False
    slices: tuple[PropagateSlice, ...] = ()


SEGMENT_REQUESTS = (LoadSegmenterRequest, SegmentRequest, PropagateRequest)
SEGMENT_REPLIES = (SegmenterLoaded, SegmentReply, PropagateReply)
