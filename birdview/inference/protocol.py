"""The messages between the viewer and the model worker: frozen dataclasses, no torch.

Only numpy arrays, strings, numbers, `Box`es (themselves strings and numbers), the ask and
sweep specs of `birdview.core.ask` (strings, numbers, enums and a `Box`) and tuples of these
cross the process boundary. Every request carries a ``request_id``; everything the worker
sends back about a request names it, and a request ends with exactly one final message:

=================  =====================================================
request            final message (or `WorkerFailure`)
=================  =====================================================
`LoadRequest`      `Loaded`
`AskRequest`       `AskReply` (after zero or more `Token`)
`SweepRequest`     `SweepReply` (after zero or more `SweepProgress`)
`StatusRequest`    `Status`
`LoadSegmenterRequest`, `SegmentRequest`, `PropagateRequest`: see
                   `birdview.inference.segmentation.protocol`
`CancelRequest`    none; the target ends early (``cancelled=True``), or with a
                   ``WorkerFailure(kind="cancelled")`` if it had not started
`ShutdownRequest`  none; the worker exits
=================  =====================================================

Errors travel as data (`WorkerFailure`), never as pickled exceptions, so an exception type
that exists only in the worker cannot break the viewer's unpickling.

Volumes cross as their voxels and geometry only (`SweepRequest.from_volume`): the header
metadata (patient name and the like) stays in the viewer.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from birdview.core.ask import AskSpec, SweepSpec
from birdview.core.box import Box
from birdview.core.volume import Volume
from birdview.inference.errors import (
    InferenceError,
    ModelLoadError,
    WorkerCrashedError,
    WorkerTimeoutError,
)

__all__ = [
    "PROTOCOL_VERSION",
    "AskReply",
    "AskRequest",
    "CancelRequest",
    "FailureKind",
    "Hello",
    "LoadRequest",
    "Loaded",
    "Message",
    "Request",
    "ShutdownRequest",
    "Status",
    "StatusRequest",
    "SweepProgress",
    "SweepReply",
    "SweepRequest",
    "SweepSlice",
    "Token",
    "VolumeFields",
    "WorkerConfig",
    "WorkerFailure",
    "new_request_id",
]

# Bump when a message changes shape; the client refuses a worker that says another number.
PROTOCOL_VERSION = 3  # 3: segmentation requests

_counter = itertools.count(1)


def new_request_id() -> str:
    """A request id unique within this process's lifetime ("<pid>-<n>")."""
    return f"{os.getpid()}-{next(_counter)}"


# -- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerConfig:
    """What the worker loads, and how (see `birdview.inference.loader.load_checkpoint`).

    Attributes:
        model_dir: a local checkpoint folder (Hugging Face layout).
        adapter_dir: an optional peft adapter folder.
        precision: "auto", "nf4", "int8", "bf16" or "fp32".
        device: "auto", "cpu", "cuda" or "cuda:N".
        trust_remote_code: run the checkpoint's own Python code (explicit opt-in only).
        torch_threads: CPU threads for torch; None leaves torch's default.
    """

    model_dir: str
    adapter_dir: str | None = None
    precision: str = "auto"
    device: str = "auto"
    trust_remote_code: bool = False
    torch_threads: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_dir", os.fspath(self.model_dir))
        if self.adapter_dir is not None:
            object.__setattr__(self, "adapter_dir", os.fspath(self.adapter_dir))
        object.__setattr__(self, "trust_remote_code", bool(self.trust_remote_code))
        if self.torch_threads is not None and int(self.torch_threads) < 1:
            raise ValueError(
                f"Unable to configure the worker as torch_threads {self.torch_threads!r} is "
                "below 1; use None for torch's default"
            )


# -- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadRequest:
    """Load (or replace) the model. Requests that arrive while it loads wait their turn."""

    config: WorkerConfig
    request_id: str = field(default_factory=new_request_id)


@dataclass(frozen=True, eq=False)
class AskRequest:
    """One question about one image.

    Attributes:
        image_rgb: (rows, cols, 3) uint8, as `birdview.core.model_input.render_for_model` makes.
        spec: what is asked (question, task, region, plane, slice, budget, streaming).
        history: earlier (question, answer) pairs about the same image.
    """

    image_rgb: np.ndarray
    spec: AskSpec
    history: tuple[tuple[str, str], ...] = ()
    request_id: str = field(default_factory=new_request_id)

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_rgb", _read_only(self.image_rgb))
        object.__setattr__(self, "history", tuple((str(q), str(a)) for q, a in self.history))


@dataclass(frozen=True, eq=False)
class VolumeFields:
    """A volume as a request carries it: voxels and geometry, no metadata (the patient's
    name and the like stay in the viewer); `to_volume` rebuilds it in the worker."""

    voxels: np.ndarray
    spacing_mm: tuple[float, float, float]
    origin_lps_mm: tuple[float, float, float]
    direction: np.ndarray
    modality: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "voxels", _read_only(self.voxels))
        object.__setattr__(self, "direction", _read_only(self.direction))

    @classmethod
    def from_volume(cls, volume: Volume, **fields):
        """The request for ``volume``; ``fields`` are the request's own."""
        return cls(
            voxels=volume.voxels,
            spacing_mm=volume.spacing_mm,
            origin_lps_mm=volume.origin_lps_mm,
            direction=volume.direction,
            modality=volume.modality,
            **fields,
        )

    def to_volume(self) -> Volume:
        return Volume(
            voxels=self.voxels,
            spacing_mm=self.spacing_mm,
            origin_lps_mm=self.origin_lps_mm,
            direction=self.direction,
            modality=self.modality,
        )


@dataclass(frozen=True, eq=False)
class SweepRequest(VolumeFields):
    """Ask ``spec`` of every slice of a volume along its plane (the volume's fields first,
    see `VolumeFields`)."""

    spec: SweepSpec
    request_id: str = field(default_factory=new_request_id)


@dataclass(frozen=True)
class CancelRequest:
    """Stop request ``target_id``: mid-answer it ends early, queued it never starts."""

    target_id: str
    request_id: str = field(default_factory=new_request_id)


@dataclass(frozen=True)
class StatusRequest:
    """Answered at once with `Status`, even while a model loads or an answer streams."""

    request_id: str = field(default_factory=new_request_id)


@dataclass(frozen=True)
class ShutdownRequest:
    """Cancel everything and exit."""

    request_id: str = field(default_factory=new_request_id)


Request = LoadRequest | AskRequest | SweepRequest | CancelRequest | StatusRequest | ShutdownRequest


# -- messages back ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    """The worker's first message: its protocol version and process id."""

    version: int
    pid: int


@dataclass(frozen=True)
class Loaded:
    """A model is loaded. ``checkpoint_sha256`` names the weights that will answer (exports
    record it); "" when it could not be computed."""

    request_id: str
    family: str
    model_type: str
    precision: str
    device: str
    notices: tuple[str, ...]
    seconds: float
    memory_bytes: int
    checkpoint_sha256: str = ""


@dataclass(frozen=True)
class Token:
    """A piece of streamed answer text (pieces concatenate to `AskReply.text`)."""

    request_id: str
    text: str


@dataclass(frozen=True)
class AskReply:
    """The answer.

    Attributes:
        text: the model's answer, markup kept, without the reasoning before it.
        boxes: the boxes parsed from it, in pixels of the image asked about.
        dropped: why each unreadable box fragment was dropped.
        question: the question as the model got it (region written in), for the history.
        n_new_tokens, seconds: generation length and time.
        cancelled: a `CancelRequest` stopped it early.
        reasoning: the model's thought before the answer ("" when none).
        raw: everything it generated, end-of-turn tokens removed.
    """

    request_id: str
    text: str
    boxes: tuple[Box, ...]
    dropped: tuple[str, ...]
    question: str
    n_new_tokens: int
    seconds: float
    cancelled: bool
    reasoning: str = ""
    raw: str = ""


@dataclass(frozen=True)
class SweepProgress:
    """Steps done of a running request: a sweep's slices, or a VoxTell propagation's
    sliding-window patches."""

    request_id: str
    done: int
    total: int


@dataclass(frozen=True)
class SweepSlice:
    """What one slice of a sweep found."""

    slice_index: int
    boxes: tuple[Box, ...]
    text: str


@dataclass(frozen=True)
class SweepReply:
    request_id: str
    results: tuple[SweepSlice, ...]
    cancelled: bool = False


@dataclass(frozen=True)
class Status:
    """What the worker is doing; the model fields are empty until a model has loaded.

    "starting" is said by the client (pid 0) while it replaces a crashed worker.
    """

    request_id: str
    state: Literal["idle", "loading", "busy", "starting"]
    pid: int
    model_dir: str = ""
    family: str = ""
    model_type: str = ""
    precision: str = ""
    device: str = ""
    queued: int = 0
    segmenter: str = ""  # the segmentation engine loaded beside the model ("" when none)


FailureKind = Literal["load", "oom", "bad_request", "internal", "crashed", "timeout", "cancelled"]

_ERROR_TYPES: dict[str, type[InferenceError]] = {
    "load": ModelLoadError,
    "crashed": WorkerCrashedError,
    "timeout": WorkerTimeoutError,
}


@dataclass(frozen=True)
class WorkerFailure:
    """A request that did not succeed, as data.

    Attributes:
        request_id: the request it ends.
        kind: "load" (the checkpoint could not be loaded), "oom" (out of memory; the message
            says what to try), "bad_request" (the request itself is wrong), "internal" (a bug
            or an unexpected error in the worker), "crashed" (the worker process died),
            "timeout" (the worker stopped answering and was restarted), "cancelled".
        message: what happened, for people (never patient data).
    """

    request_id: str
    kind: FailureKind
    message: str

    def to_exception(self) -> InferenceError:
        """The matching `InferenceError` (`WorkerCrashedError`, `WorkerTimeoutError`,
        `ModelLoadError`, or the base class), for callers that prefer to raise."""
        return _ERROR_TYPES.get(self.kind, InferenceError)(f"[{self.kind}] {self.message}")


Message = Hello | Loaded | Token | AskReply | SweepProgress | SweepReply | Status | WorkerFailure


def _read_only(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.flags.writeable:
        array = array.view()
        array.flags.writeable = False
    return array
