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

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from birdview.core.ask import AskSpec, SweepSpec, ask_spec, sweep_spec
from birdview.core.geometry import Plane
from birdview.core.volume import Volume
from birdview.inference._client_process import (
    WorkerProcess,
    kill_worker,
    spawn_worker,
    stop_worker,
)
from birdview.inference._client_requests import (
    Pending,
    PendingTable,
    RequestHandle,
    Result,
    call,
    is_work,
)
from birdview.inference.protocol import (
    AskReply,
    AskRequest,
    CancelRequest,
    Hello,
    Loaded,
    LoadRequest,
    Status,
    StatusRequest,
    SweepProgress,
    SweepReply,
    SweepRequest,
    Token,
    WorkerConfig,
    WorkerFailure,
)
from birdview.inference.segmentation.client import SegmentationMethods
from birdview.inference.segmentation.protocol import (
    LoadSegmenterRequest,
    PropagateReply,
    PropagateSlice,
    SegmenterLoaded,
    SegmentReply,
)

__all__ = ["InferenceClient", "RequestHandle"]

logger = logging.getLogger(__name__)


class InferenceClient(SegmentationMethods):
    """Starts, feeds, watches and restarts the model worker. Thread-safe.

    Args:
        timeout_s: silence that counts as a hang while an ask or sweep is pending.
        load_timeout_s: the same while a model loads (loading sends nothing until it ends).
        start_timeout_s: how long a new worker may take to say hello.
        max_restarts: automatic restarts in a row, without a success between, before giving up.
    """

    def __init__(
        self,
        *,
        timeout_s: float = 120.0,
        load_timeout_s: float = 900.0,
        start_timeout_s: float = 120.0,
        max_restarts: int = 3,
    ) -> None:
        self.timeout_s = timeout_s
        self.load_timeout_s = load_timeout_s
        self.start_timeout_s = start_timeout_s
        self.max_restarts = max_restarts
        self.restarts = 0  # how many times a worker was replaced after a crash or hang
        # Told the result (`Loaded` or `WorkerFailure`) of each automatic reload after a
        # restart — or a `WorkerFailure` when the client gives up — on the reader thread: a
        # GUI shows "restarting…" until then.
        self.on_reloaded: Callable[[Result], None] | None = None
        self._lock = threading.RLock()
        self._send_lock = threading.Lock()
        self._pending = PendingTable()
        self._state = "new"  # new, running, restarting, failed, closed
        self._worker: WorkerProcess | None = None
        self._generation = 0
        self._last_load: LoadRequest | None = None
        self._loaded: Loaded | None = None
        self._last_segmenter_load: LoadSegmenterRequest | None = None
        self.segmenter_loaded: SegmenterLoaded | None = None  # as `loaded`, for the segmenter
        self._failures_in_a_row = 0
        self._last_activity = time.monotonic()
        self._reader: threading.Thread | None = None

    def start(self) -> Hello:
        """Start the worker and wait for its hello.

        Raises:
            WorkerCrashedError: it could not be started (the message says why).
            RuntimeError: the client was started before or has shut down.
        """
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"Unable to start the client as it is {self._state}")
            self._state = "restarting"
        try:
            worker = spawn_worker(start_timeout_s=self.start_timeout_s)
        except BaseException:
            self._state = "new"  # may be tried again
            raise
        with self._lock:
            self._worker, self._state = worker, "running"
            self._last_activity = time.monotonic()
        self._reader = threading.Thread(target=self._read, name="birdview-client", daemon=True)
        self._reader.start()
        return worker.hello

    def __enter__(self) -> InferenceClient:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @property
    def state(self) -> str:
        """ "new", "running", "restarting", "failed" (gave up: `restart()` tries again) or
        "closed"."""
        return self._state

    @property
    def pid(self) -> int | None:
        """The current worker's process id (None while none runs)."""
        worker = self._worker
        return worker.pid if worker else None

    @property
    def loaded(self) -> Loaded | None:
        """What the current worker has loaded (None before, or while it reloads)."""
        return self._loaded

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Ask the worker to leave, then terminate, then kill it; reap it; fail what is pending
        with kind "cancelled". Safe to call twice."""
        with self._lock:
            if self._state == "closed":
                return
            self._state = "closed"
            worker, self._worker = self._worker, None
        if worker is not None:
            polite = self._send_lock.acquire(timeout=1.0)  # a send may hang on a stopped worker
            try:
                stop_worker(worker.process, worker.connection, timeout_s=timeout_s, polite=polite)
            finally:
                if polite:
                    self._send_lock.release()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout_s)
        self._pending.fail(lambda p: True, "cancelled", "the client shut down")

    def restart(self, *, reload: bool = True) -> None:
        """Replace the worker now, e.g. after the client gave up; what the old worker had fails
        with kind "crashed". The last model is loaded again unless ``reload`` is False (the
        caller is about to load one itself)."""
        with self._lock:
            if self._state in ("new", "closed"):
                raise RuntimeError(f"Unable to restart the client as it is {self._state}")
            self._failures_in_a_row = 0
            if not reload:
                self._last_load = self._last_segmenter_load = None
            # The state stays "failed" until the new worker is up, so a request sent in
            # between waits for it instead of going to no worker at all.
            old = self._worker
        self._replace_worker(old, "crashed", "the worker was restarted", forced=True)

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

    def _send(self, request: Any, worker: WorkerProcess | None = None) -> None:
        """Send to ``worker`` (default: the current one); a dead worker is left to the reader."""
        worker = worker or self._worker
        if worker is None:
            return
        try:
            with self._send_lock:
                worker.connection.send(request)
        except (OSError, ValueError):
            pass  # the worker is gone: the reader sees it and fails what it had

    def _read(self) -> None:
        """The reader thread: dispatch messages; watch for death and silence."""
        while True:
            with self._lock:
                if self._state == "closed":
                    return
                worker = self._worker
            if worker is None:  # a restart is under way, or gave up: wait
                time.sleep(0.05)
                continue
            try:
                message = worker.connection.recv() if worker.connection.poll(0.05) else None
            except (EOFError, OSError):
                message, dead = None, True
            else:
                dead = message is None and not worker.process.is_alive()
            if message is not None:
                self._dispatch(message)
                continue
            with self._lock:
                if worker is not self._worker:
                    continue
                hung = self._hung()
            if dead:
                code = worker.process.exitcode
                logger.warning("worker %d died (exit code %r); restarting", worker.pid, code)
                self._replace_worker(worker, "crashed", f"the worker died (exit code {code})")
            elif hung:
                logger.warning("worker %d silent for %g s while busy; killing it", worker.pid, hung)
                kill_worker(worker.process)
                self._replace_worker(worker, "timeout", f"the worker was silent for {hung:g} s")

    def _hung(self) -> float:
        """The silence limit that has passed while the worker had work, or 0."""
        if not self._pending.busy(self._generation):
            return 0.0
        loading = self._pending.loading(self._generation)
        limit = self.load_timeout_s if loading else self.timeout_s
        return limit if time.monotonic() - self._last_activity > limit else 0.0

    def _dispatch(self, message: Any) -> None:
        rid = getattr(message, "request_id", "")
        pending = self._pending.get(rid)
        if not isinstance(message, Status):  # a hung worker may still answer status
            with self._lock:
                self._last_activity = time.monotonic()
        if pending is None:
            return  # a late message for a request already failed or cancelled
        if isinstance(message, Token):
            call(pending.on_token, message.text)
        elif isinstance(message, SweepProgress):
            call(pending.on_progress, message.done, message.total)
        elif isinstance(message, PropagateSlice):
            pending.slices.append(message)
            call(pending.on_slice, message)
        else:
            if isinstance(message, PropagateReply):  # the slices came one by one
                ordered = tuple(sorted(pending.slices, key=lambda m: m.slice_index))
                message = replace(message, slices=ordered)
            with self._lock:
                # Only finished work proves a worker healthy: one that dies soon after each
                # automatic reload must still reach max_restarts.
                if isinstance(message, (AskReply, SweepReply, SegmentReply, PropagateReply)):
                    self._failures_in_a_row = 0
                if isinstance(message, Loaded):
                    self._loaded = message
                if isinstance(message, SegmenterLoaded):
                    self.segmenter_loaded = message
            self._pending.finish(rid, message)

    def _replace_worker(
        self, old: WorkerProcess | None, kind: str, message: str, *, forced: bool = False
    ) -> None:
        """Fail what ``old`` had, reap it, start another, reload, send what waited."""
        with self._lock:
            if self._worker is not old or self._state in ("closed", "restarting"):
                return  # another thread is already at it, or the client is closing
            self._worker, self._state, self._loaded = None, "restarting", None
            self.segmenter_loaded = None
            dead_generation = self._generation
            self._generation += 1
            self._failures_in_a_row += 1
            give_up = not forced and self._failures_in_a_row > self.max_restarts
        self._pending.fail(lambda p: p.generation == dead_generation, kind, message)
        if old is not None:
            stop_worker(old.process, old.connection, timeout_s=0.0, polite=False)
        worker = None
        if not give_up:
            try:
                worker = spawn_worker(start_timeout_s=self.start_timeout_s)
            except Exception as exc:  # reported to every waiting request below
                message = str(exc)
        with self._lock:
            closed = self._state == "closed"
            if not closed:
                self._state = "failed" if worker is None else "running"
                self._worker, self._last_activity = worker, time.monotonic()
                if worker is not None:
                    self.restarts += 1
                    waiting = self._resend()
        if closed and worker is not None:
            stop_worker(worker.process, worker.connection, timeout_s=1.0)
        elif worker is None:
            failures = self._failures_in_a_row
            logger.error("giving up on the worker after %d failures", failures)
            self._pending.fail(lambda p: True, "crashed", f"the worker is down: {message}")
            if self._last_load is not None:  # the model that was loaded is gone for now
                down = f"the worker failed {failures} times in a row and was not restarted"
                call(self.on_reloaded, WorkerFailure("", "crashed", down))
        elif not closed:
            logger.info("worker %d replaces the old one; resending %d", worker.pid, len(waiting))

    def _resend(self) -> list[Any]:
        """Send the new worker the last load (first) and what waited; returns those requests."""
        waiting = []
        if self._last_load is not None:  # a reload is nobody's request now
            reload = LoadRequest(self._last_load.config)
            handle = RequestHandle(reload.request_id)
            self._pending.add(
                Pending(reload, handle, self.on_reloaded, generation=self._generation)
            )
            waiting.append(reload)
        if self._last_segmenter_load is not None:  # and the segmenter, likewise
            again = LoadSegmenterRequest(self._last_segmenter_load.config)
            self._pending.add(
                Pending(again, RequestHandle(again.request_id), generation=self._generation)
            )
            waiting.append(again)
        waiting += self._pending.adopt_waiting(self._generation)
        for request in waiting:
            self._send(request)
        return waiting
