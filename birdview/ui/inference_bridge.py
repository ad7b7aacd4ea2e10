"""`InferenceBridge`: the `InferenceClient` seen from the GUI thread, as Qt signals.

The client calls back on its reader thread; emitting a signal of this GUI-thread object from
there queues the call into the GUI thread's event loop, so every slot connected here runs on the
GUI thread and may touch widgets and the session. Starting the worker (seconds: it imports
torch) also happens off the GUI thread. Nothing here waits for the model.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from birdview.core.ask import AskSpec, SweepSpec
from birdview.inference.client import InferenceClient
from birdview.inference.protocol import WorkerConfig, WorkerFailure

__all__ = ["InferenceBridge"]

logger = logging.getLogger(__name__)


class InferenceBridge(QObject):
    """Owns the client; its signals carry the worker's messages to the GUI thread.

    Signals:
        loaded(result): a load ended: `Loaded` or `WorkerFailure` (also for reloads after an
            automatic restart).
        token(key, text): a streamed piece of an answer.
        progress(key, done, total): a sweep's progress.
        finished(key, result): an ask or sweep ended: `AskReply`, `SweepReply` or
            `WorkerFailure`.

    ``key`` is what `ask` and `sweep` return (requests are sent from a thread, so the client's
    own request id is not known when they return).
    """

    loaded = Signal(object)
    token = Signal(str, str)
    progress = Signal(str, int, int)
    finished = Signal(str, object)

    def __init__(
        self,
        client_factory: Callable[[], InferenceClient] = InferenceClient,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._factory = client_factory
        self._client: InferenceClient | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._keys = itertools.count(1)
        self._sent: dict[str, str] = {}  # key → the client's request id ("" until sent)
        self._cancel_when_sent: set[str] = set()

    @property
    def client(self) -> InferenceClient | None:
        return self._client

    def load(self, config: WorkerConfig) -> None:
        """Start the worker if needed and load ``config``; the outcome comes as `loaded`."""
        threading.Thread(
            target=self._start_and_load, args=(config,), name="birdview-load", daemon=True
        ).start()

    def ask(self, image_rgb, spec: AskSpec, *, history=()) -> str:
        """Send a question (see `InferenceClient.ask`); returns the key its signals carry.

        Raises:
            RuntimeError: no model was loaded.
        """
        client = self._running()
        return self._send_later(
            lambda key: client.ask(
                image_rgb,
                spec,
                history=history,
                on_token=lambda text: self.token.emit(key, text),
                on_done=lambda result: self._done(key, result),
            )
        )

    def sweep(self, volume, spec: SweepSpec) -> str:
        """Ask ``spec`` of every slice of its plane; returns the key its signals carry."""
        client = self._running()
        return self._send_later(
            lambda key: client.sweep(
                volume,
                spec,
                on_progress=lambda done, total: self.progress.emit(key, done, total),
                on_done=lambda result: self._done(key, result),
            )
        )

    def cancel(self, key: str) -> None:
        """Stop a request made by `ask` or `sweep` (also one not yet sent)."""
        client = self._client
        with self._lock:
            request_id = self._sent.get(key)
            if request_id == "":
                self._cancel_when_sent.add(key)
                return
        if client is not None and request_id:
            client.cancel(request_id)

    def shutdown(self) -> None:
        """Stop the worker (blocks at most a few seconds; call when the window closes)."""
        with self._lock:
            self._closed = True
            client, self._client = self._client, None
        if client is not None:
            client.shutdown(timeout_s=3.0)

    # -- internals -----------------------------------------------------------------------------

    def gave_up(self) -> bool:
        """Whether the worker failed repeatedly and is no longer restarted by itself."""
        client = self._client
        return client is not None and client.state == "failed"

    def _running(self) -> InferenceClient:
        client = self._client
        if client is None:
            raise RuntimeError("Unable to ask the model as none is loaded")
        return client

    def _send_later(self, send) -> str:
        """Run ``send(key)`` on a thread and return ``key`` at once: pickling an image or a
        volume and writing it to the worker takes tens of milliseconds, and blocks for good
        on a worker that hangs."""
        key = f"request-{next(self._keys)}"
        with self._lock:
            self._sent[key] = ""
        threading.Thread(
            target=self._send, args=(send, key), name="birdview-send", daemon=True
        ).start()
        return key

    def _send(self, send, key: str) -> None:
        try:
            handle = send(key)
        except Exception as exc:  # noqa: BLE001 - reported as the request's failure
            self._done(key, WorkerFailure(key, "bad_request", str(exc)))
            return
        with self._lock:
            if key in self._sent:
                self._sent[key] = handle.request_id
            cancel = key in self._cancel_when_sent
            self._cancel_when_sent.discard(key)
        if cancel:
            client = self._client
            if client is not None:
                client.cancel(handle.request_id)

    def _done(self, key: str, result: object) -> None:
        with self._lock:
            self._sent.pop(key, None)
            self._cancel_when_sent.discard(key)
        self.finished.emit(key, result)

    def _start_and_load(self, config: WorkerConfig) -> None:
        try:
            client = self._started_client()
        except Exception as exc:  # noqa: BLE001 - reported to the user as a load failure
            logger.warning("the model worker could not start: %s", exc)
            self.loaded.emit(WorkerFailure("", "load", f"the model worker could not start: {exc}"))
            return
        if client is None:
            return
        client.load(config, on_done=self.loaded.emit)

    def _started_client(self) -> InferenceClient | None:
        with self._lock:
            if self._closed:
                return None
            existing = self._client
            if existing is None:
                client = self._factory()
                client.on_reloaded = self.loaded.emit
        if existing is not None:
            if existing.state == "failed":  # it gave up after repeated crashes
                existing.restart(reload=False)  # the caller's load follows
            return existing
        client.start()
        with self._lock:
            if self._closed:
                client.shutdown(timeout_s=3.0)
                return None
            self._client = client
        return client
