"""The client's bookkeeping for one request: its handle and its callbacks (no torch)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from birdview.inference.protocol import AskRequest, LoadRequest, SweepRequest, WorkerFailure
from birdview.inference.segmentation.protocol import SEGMENT_REQUESTS, LoadSegmenterRequest

logger = logging.getLogger(__name__)

Result = Any  # Loaded | AskReply | SweepReply | Status | WorkerFailure


class RequestHandle:
    """A request in flight: its id, and its result once it has one."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self._done = threading.Event()
        self._result: Result = None

    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout_s: float | None = None) -> Result:
        """The reply or `WorkerFailure`, waiting up to ``timeout_s`` (None: for ever).

        Raises:
            TimeoutError: no result within ``timeout_s`` (the request goes on).
        """
        if not self._done.wait(timeout_s):
            raise TimeoutError(f"request {self.request_id} has no result after {timeout_s} s")
        return self._result

    def _set(self, result: Result) -> None:
        self._result = result
        self._done.set()


@dataclass
class Pending:
    request: Any
    handle: RequestHandle
    on_done: Callable[[Result], None] | None = None
    on_token: Callable[[str], None] | None = None
    on_progress: Callable[[int, int], None] | None = None
    generation: int = -1  # the worker it was sent to; -1 while it waits for one
    on_slice: Callable[[Any], None] | None = None  # each streamed `PropagateSlice`
    slices: list[Any] = field(default_factory=list)  # collected for the final reply


def is_work(request: Any) -> bool:
    return isinstance(request, (LoadRequest, AskRequest, SweepRequest, *SEGMENT_REQUESTS))


def call(callback: Callable[..., None] | None, *args: Any) -> None:
    if callback is None:
        return
    try:
        callback(*args)
    except Exception:  # a caller's bug must not stop the reader thread
        logger.exception("an inference callback raised")


class PendingTable:
    """The requests sent (or waiting to be sent) and not yet finished; thread-safe.

    Each request is finished exactly once: by whichever thread pops it first.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, Pending] = {}

    def add(self, pending: Pending) -> None:
        with self._lock:
            self._items[pending.request.request_id] = pending

    def get(self, request_id: str) -> Pending | None:
        with self._lock:
            return self._items.get(request_id)

    def pop(self, request_id: str) -> Pending | None:
        with self._lock:
            return self._items.pop(request_id, None)

    def finish(self, request_id: str, result: Result) -> None:
        pending = self.pop(request_id)
        if pending is None:
            return
        pending.handle._set(result)
        call(pending.on_done, result)

    def fail(self, which: Callable[[Pending], bool], kind: str, message: str) -> None:
        with self._lock:
            ids = [rid for rid, p in self._items.items() if which(p)]
        for rid in ids:
            self.finish(rid, WorkerFailure(rid, kind, message))  # type: ignore[arg-type]

    def busy(self, generation: int, exclude: Pending | None = None) -> bool:
        """Whether worker ``generation`` has a load, ask or sweep to answer."""
        with self._lock:
            return any(
                p is not exclude and p.generation == generation and is_work(p.request)
                for p in self._items.values()
            )

    def loading(self, generation: int) -> bool:
        with self._lock:
            return any(
                p.generation == generation
                and isinstance(p.request, (LoadRequest, LoadSegmenterRequest))
                for p in self._items.values()
            )

    def adopt_waiting(self, generation: int) -> list[Any]:
        """Give the requests that wait for a worker to worker ``generation``; their requests,
        in the order they were made."""
        with self._lock:
            waiting = [p for p in self._items.values() if p.generation < 0]
            for pending in waiting:
                pending.generation = generation
            return [p.request for p in waiting]
