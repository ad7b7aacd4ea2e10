"""`InferenceClient`: the viewer's only way to the model, which runs in a worker process.

No torch and no Qt here. Requests return a `RequestHandle` at once; results arrive as data
(a reply or a `WorkerFailure`) through ``on_done`` and the handle. Callbacks run on the
client's reader thread: a GUI must hop them onto its own thread.

A worker that dies (end of file on the pipe, or its process gone) or hangs (silent for
``timeout_s`` while it has work) is replaced: what it had fails with kind "crashed" or
"timeout", a new worker starts and gets the last `LoadRequest` again, then the requests made
meanwhile. After ``max_restarts`` failures in a row it gives up until `restart()`.

    client = InferenceClient(timeout_s=60)
    client.start()
    client.load(WorkerConfig(model_dir)).result()
    reply = client.ask(image_rgb, "Where is the liver?", on_token=print).result()
    client.shutdown()
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from birdview.core.ask import AskSpec, SweepSpec, ask_spec, sweep_spec
from birdview.core.geometry import Plane
from birdview.core.volume import Volume
from birdview.inference._client_requests import Pending, RequestHandle, Result, is_work
from birdview.inference._client_supervisor import WorkerSupervisor
from birdview.inference.protocol import (
    AskRequest,
    CancelRequest,
    LoadRequest,
    Status,
    StatusRequest,
    SweepRequest,
    WorkerConfig,
    WorkerFailure,
)
from birdview.inference.segmentation.client import SegmentationMethods

__all__ = ["InferenceClient", "RequestHandle"]


class InferenceClient(SegmentationMethods, WorkerSupervisor):
    """Starts, feeds, watches and restarts the model worker. Thread-safe.

    The worker's life (start, watch, restart, shutdown) is `WorkerSupervisor`'s; the requests
    are here and, for segmentation, in `SegmentationMethods`.

    Args:
        timeout_s: silence that counts as a hang while an ask or sweep is pending.
        load_timeout_s: the same while a model loads (loading sends nothing until it ends).
        start_timeout_s: how long a new worker may take to say hello.
        max_restarts: automatic restarts in a row, without a success between, before giving up.
    """

    def __enter__(self) -> InferenceClient:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def load(
        self, config: WorkerConfig, *, on_done: Callable[[Result], None] | None = None
    ) -> RequestHandle:
        """Load a model (replacing any); the result is `Loaded` or `WorkerFailure`. Requests
        sent while it loads wait in the worker and run after it."""
        request = LoadRequest(config)
        with self._lock:
            self._last_load, self._loaded = request, None
        return self._submit(Pending(request, RequestHandle(request.request_id), on_done))

    def ask(
        self,
        image_rgb: np.ndarray,
        spec: AskSpec | str,
        *,
        history: Sequence[tuple[str, str]] = (),
        on_token: Callable[[str], None] | None = None,
        on_done: Callable[[Result], None] | None = None,
        **options: Any,
    ) -> RequestHandle:
        """Ask ``spec`` about one (rows, cols, 3) uint8 image (`model_input.render_for_model`);
        streamed text goes to ``on_token``; the result is `AskReply` or `WorkerFailure`.
        A question string and `AskSpec` keywords (``region``, ``plane``...) make the spec too.

        Raises:
            ValueError: the spec is invalid, e.g. the question is longer than
                `prompts.MAX_QUESTION_CHARS` (nothing is sent).
        """
        request = AskRequest(image_rgb, ask_spec(spec, **options), history=tuple(history))
        return self._submit(Pending(request, RequestHandle(request.request_id), on_done, on_token))

    def sweep(
        self,
        volume: Volume,
        spec: SweepSpec | str,
        plane: Plane | str | None = None,
        *,
        on_progress: Callable[[int, int], None] | None = None,
        on_done: Callable[[Result], None] | None = None,
        **options: Any,
    ) -> RequestHandle:
        """Ask ``spec`` of every slice along its plane; progress goes to ``on_progress`` as
        (done, total); the result is `SweepReply` (partial with ``cancelled=True`` after a
        cancel) or `WorkerFailure`. A question string, ``plane`` and `SweepSpec` keywords
        make the spec too.

        Raises:
            ValueError: the spec is invalid, e.g. the question is longer than
                `prompts.MAX_QUESTION_CHARS` (nothing is sent).
        """
        request = SweepRequest.from_volume(volume, spec=sweep_spec(spec, plane, **options))
        handle = RequestHandle(request.request_id)
        return self._submit(Pending(request, handle, on_done, on_progress=on_progress))

    def cancel(self, request_id: str) -> None:
        """Stop a request: mid-answer it ends early (``cancelled=True``); not yet started, it
        ends with ``WorkerFailure(kind="cancelled")``. Unknown or finished ids are ignored."""
        pending = self._pending.get(request_id)
        if pending is not None and pending.generation < 0:  # never reached a worker
            self._pending.finish(request_id, WorkerFailure(request_id, "cancelled", "cancelled"))
        elif pending is not None:
            self._send(CancelRequest(request_id))

    def status(self, timeout_s: float = 5.0) -> Status | WorkerFailure:
        """What the worker is doing; answered even while it loads or streams. A worker being
        restarted reads as state "starting"."""
        if self._state != "running":  # one read of one attribute: no lock needed
            return Status("", "starting", pid=0)
        request = StatusRequest()
        handle = self._submit(Pending(request, RequestHandle(request.request_id)))
        try:
            return handle.result(timeout_s)
        except TimeoutError:
            self._pending.pop(request.request_id)
            return WorkerFailure(request.request_id, "timeout", "the worker did not answer")

    def _submit(self, pending: Pending) -> RequestHandle:
        request = pending.request
        with self._lock:
            if self._state in ("new", "closed"):
                raise RuntimeError(f"Unable to send a request as the client is {self._state}")
            self._pending.add(pending)
            state, worker = self._state, self._worker
            if state == "running":
                if is_work(request) and not self._pending.busy(self._generation):
                    self._last_activity = time.monotonic()  # the silence clock starts now
                pending.generation = self._generation
        if state == "running":  # outside the lock: a send to a stopped worker can block
            try:
                self._send(request, worker)
            except Exception:  # could not pickle it: a programming error, the caller's
                self._pending.pop(request.request_id)
                raise
        elif state == "failed":
            failure = WorkerFailure(request.request_id, "crashed", "the worker is down; restart()")
            self._pending.finish(request.request_id, failure)
        return pending.handle  # "restarting": sent once the new worker is up
