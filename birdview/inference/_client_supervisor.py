"""`WorkerSupervisor`: the half of `birdview.inference.client.InferenceClient` that keeps a
worker process alive. It starts the worker, reads its messages on a thread and hands each to
the request it answers, and replaces a worker that dies or hangs (failing what it had, then
reloading the last model and resending what waited). No torch and no Qt here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from birdview.inference._client_process import (
    WorkerProcess,
    kill_worker,
    spawn_worker,
    stop_worker,
)
from birdview.inference._client_requests import Pending, PendingTable, RequestHandle, Result, call
from birdview.inference.protocol import (
    AskReply,
    Hello,
    Loaded,
    LoadRequest,
    Status,
    SweepProgress,
    SweepReply,
    Token,
    WorkerFailure,
)
from birdview.inference.segmentation.protocol import (
    LoadSegmenterRequest,
    PropagateReply,
    PropagateSlice,
    SegmenterLoaded,
    SegmentReply,
)

__all__ = ["WorkerSupervisor"]

logger = logging.getLogger(__name__)


class WorkerSupervisor:
    """Starts, watches and restarts the model worker; `InferenceClient` adds the requests.
    Thread-safe.

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
