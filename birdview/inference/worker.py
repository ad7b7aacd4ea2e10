"""The model worker: a separate process that owns torch, the model and the engine.

`main(connection)` is the process entry (the client starts it with the ``spawn`` method). It
says `Hello`, then serves requests from the connection one at a time, in arrival order:

- A reader thread receives every message. `CancelRequest` and `StatusRequest` are handled there
  at once, so they work while a model loads or an answer streams; everything else is queued for
  the main loop.
- Requests that arrive while a model loads are **queued**, not refused: they run, in order, once
  the load ends (against the new model, or failing with "bad_request" if no model loaded).
  `Status` says "loading" meanwhile, and `queued` counts them.
- Every request ends with exactly one reply or `WorkerFailure`; no exception leaves a request.
- The connection closing (the viewer died) ends the worker: no orphan outlives its viewer.

torch and transformers are imported only after the offline switches are set, and after `Hello`
has gone out, so the handshake is quick.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from birdview.inference._worker_parts import (
    BadRequest,
    TokenStream,
    configure_worker_logging,
    failure_for,
    memory_bytes,
)
from birdview.inference.offline import go_offline
from birdview.inference.protocol import (
    PROTOCOL_VERSION,
    AskReply,
    AskRequest,
    CancelRequest,
    Hello,
    Loaded,
    LoadRequest,
    ShutdownRequest,
    Status,
    StatusRequest,
    SweepProgress,
    SweepReply,
    SweepRequest,
    SweepSlice,
    Token,
    WorkerFailure,
)
from birdview.inference.segmentation.protocol import (
    SEGMENT_REQUESTS,
    LoadSegmenterRequest,
    PropagateRequest,
    SegmentRequest,
)
from birdview.inference.segmentation.serve import Segmenter

__all__ = ["main"]

logger = logging.getLogger(__name__)

# After the viewer's end of the pipe closes, give the current request this long to notice the
# cancel before the process leaves regardless.
_ORPHAN_GRACE_S = 5.0


def main(connection: Connection) -> None:
    """Serve requests from ``connection`` until a `ShutdownRequest` or the viewer goes away."""
    go_offline()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    configure_worker_logging()
    _Worker(connection).serve()


class _Worker:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()  # guards the fields below
        self._queue: queue.Queue[Any] = queue.Queue()
        self._state = "idle"
        self._current_id: str | None = None
        self._cancel = threading.Event()
        self._cancelled_ids: set[str] = set()
        self._closing = False
        self._queued = 0
        self._engine: Any = None
        self._loaded: Any = None
        self._model_dir = ""
        self._segmenter = Segmenter()  # beside the language model, loaded on its own

    # -- plumbing ------------------------------------------------------------------------------

    def send(self, message: Any) -> None:
        try:
            with self._send_lock:
                self._connection.send(message)
        except (OSError, EOFError, BrokenPipeError):
            logger.warning("the viewer's end of the pipe is gone; dropping a message")

    def serve(self) -> None:
        self.send(Hello(version=PROTOCOL_VERSION, pid=os.getpid()))
        logger.info("worker %d up, protocol %d", os.getpid(), PROTOCOL_VERSION)
        threading.Thread(target=self._read, name="birdview-worker-reader", daemon=True).start()
        while True:
            request = self._queue.get()
            if isinstance(request, ShutdownRequest):
                break
            if not self._begin(request):
                self.send(WorkerFailure(request.request_id, "cancelled", "cancelled before it ran"))
                continue
            self._run(request)
        logger.info("worker %d shutting down", os.getpid())

    def _read(self) -> None:
        """Receive forever; answer cancel and status here, queue the rest."""
        while True:
            try:
                request = self._connection.recv()
            except (EOFError, OSError):
                logger.warning("the viewer's end of the pipe closed; leaving")
                self._leave()
                return
            except Exception as exc:  # an unpicklable message: report, keep reading
                logger.exception("unreadable message")
                self.send(WorkerFailure("", "bad_request", f"Unable to read a message: {exc}"))
                continue
            if isinstance(request, CancelRequest):
                self._on_cancel(request.target_id)
            elif isinstance(request, StatusRequest):
                self.send(self._status(request.request_id))
            elif isinstance(request, ShutdownRequest):
                self._leave(request)
                return
            elif isinstance(request, (LoadRequest, AskRequest, SweepRequest, *SEGMENT_REQUESTS)):
                with self._lock:
                    self._queued += 1
                self._queue.put(request)
            else:
                rid = getattr(request, "request_id", "")
                kind = type(request).__name__
                self.send(WorkerFailure(rid, "bad_request", f"Unable to serve a {kind} message"))

    def _leave(self, request: ShutdownRequest | None = None) -> None:
        """Cancel the current request and everything queued, then stop the main loop."""
        with self._lock:
            self._closing = True
            self._cancel.set()
            while True:
                try:
                    queued = self._queue.get_nowait()
                except queue.Empty:
                    break
                self._queued -= 1
                self.send(WorkerFailure(queued.request_id, "cancelled", "the worker shut down"))
        self._queue.put(request or ShutdownRequest())
        if request is None:  # orphaned: do not wait for a generation that ignores cancel
            deadline = threading.Timer(_ORPHAN_GRACE_S, os._exit, args=(0,))
            deadline.daemon = True  # a clean exit need not wait for it
            deadline.start()

    def _on_cancel(self, target_id: str) -> None:
        with self._lock:
            if target_id == self._current_id:
                self._cancel.set()
            else:
                self._cancelled_ids.add(target_id)

    def _status(self, request_id: str) -> Status:
        with self._lock:
            loaded = self._loaded
            return Status(
                request_id=request_id,
                state=self._state,  # type: ignore[arg-type]
                pid=os.getpid(),
                model_dir=self._model_dir if loaded is not None else "",
                family=str(getattr(loaded, "family", "")),
                model_type=str(getattr(loaded, "model_type", "")),
                precision=str(getattr(loaded, "precision", "")),
                device=str(getattr(loaded, "device", "")),
                queued=max(self._queued, 0),
                segmenter=str(getattr(self._segmenter.loaded, "key", "")),
            )

    # -- requests ------------------------------------------------------------------------------

    def _begin(self, request: Any) -> bool:
        """Make ``request`` the current one, unless it was cancelled while queued (checked
        under the same lock a cancel takes, so no cancel falls between the two)."""
        with self._lock:
            self._queued -= 1
            if request.request_id in self._cancelled_ids or self._closing:
                self._cancelled_ids.discard(request.request_id)
                return False
            self._current_id = request.request_id
            self._cancel.clear()
            loading = isinstance(request, (LoadRequest, LoadSegmenterRequest))
            self._state = "loading" if loading else "busy"
            return True

    def _run(self, request: Any) -> None:
        try:
            if isinstance(request, LoadRequest):
                reply: Any = self._load(request)
            elif isinstance(request, AskRequest):
                reply = self._ask(request)
            elif isinstance(request, LoadSegmenterRequest):
                reply = self._segmenter.load(request)
            elif isinstance(request, SegmentRequest):
                reply = self._segmenter.segment(request)
            elif isinstance(request, PropagateRequest):
                reply = self._segmenter.propagate(request, self.send, self._cancel.is_set)
            else:
                reply = self._sweep(request)
        except BaseException as exc:  # every failure becomes data; SystemExit included
            reply = failure_for(request.request_id, exc)
        finally:
            with self._lock:
                self._current_id = None
                self._state = "idle"
        self.send(reply)

    def _load(self, request: LoadRequest) -> Loaded:
        import torch

        from birdview.inference.engine import Engine
        from birdview.inference.loader import load_checkpoint

        config = request.config
        if config.torch_threads:
            torch.set_num_threads(int(config.torch_threads))
        with self._lock:  # drop the old model first: two may not fit
            self._engine = self._loaded = None
        started = time.perf_counter()
        loaded = load_checkpoint(
            config.model_dir,
            adapter_dir=config.adapter_dir,
            precision=config.precision,
            device=config.device,
            trust_remote_code=config.trust_remote_code,
        )
        engine = Engine(loaded)
        seconds = time.perf_counter() - started
        with self._lock:
            self._engine, self._loaded, self._model_dir = engine, loaded, config.model_dir
        memory = memory_bytes(loaded.model)
        logger.info(
            "loaded %s (%s, %s on %s) in %.1f s, %d MB",
            loaded.model_type,
            loaded.family,
            loaded.precision,
            loaded.device,
            seconds,
            memory // 2**20,
        )
        return Loaded(
            request_id=request.request_id,
            family=str(loaded.family),
            model_type=str(loaded.model_type),
            precision=str(loaded.precision),
            device=str(loaded.device),
            notices=tuple(str(n) for n in getattr(loaded, "notices", ())),
            seconds=seconds,
            memory_bytes=memory,
            checkpoint_sha256=str(loaded.checkpoint_sha256),
        )

    def _ask(self, request: AskRequest) -> AskReply:
        from birdview.core.ask import AskSpec
        from birdview.core.prompts import Conversation, Turn

        spec = _checked(request.spec, AskSpec)
        engine = self._require_engine()
        if not isinstance(request.image_rgb, np.ndarray):
            raise BadRequest(f"Unable to answer as the image is a {type(request.image_rgb)}")
        rid = request.request_id
        stream = TokenStream(lambda text: self.send(Token(rid, text)))
        answer = engine.ask(
            request.image_rgb,
            spec,
            history=Conversation(tuple(Turn(q, a) for q, a in request.history)),
            on_token=stream.put,
            cancel=self._cancel.is_set,
        )
        stream.flush()
        return AskReply(
            request_id=rid,
            text=str(answer.text),
            boxes=tuple(answer.boxes),
            dropped=tuple(str(d) for d in answer.dropped),
            question=str(answer.question),
            n_new_tokens=int(answer.n_new_tokens),
            seconds=float(answer.seconds),
            cancelled=bool(answer.cancelled),
            reasoning=str(answer.reasoning),
            raw=str(answer.raw),
        )

    def _sweep(self, request: SweepRequest) -> SweepReply:
        from birdview.core.ask import SweepSpec

        spec = _checked(request.spec, SweepSpec)
        engine = self._require_engine()
        try:
            volume = request.to_volume()
        except (TypeError, ValueError) as exc:
            raise BadRequest(f"Unable to sweep as the volume is malformed: {exc}") from exc
        rid = request.request_id
        results = engine.sweep(
            volume,
            spec,
            progress=lambda done, total: self.send(SweepProgress(rid, int(done), int(total))),
            cancel=self._cancel.is_set,
        )
        slices = tuple(SweepSlice(int(r.slice_index), tuple(r.boxes), str(r.text)) for r in results)
        return SweepReply(rid, slices, cancelled=self._cancel.is_set())

    def _require_engine(self) -> Any:
        with self._lock:
            engine = self._engine
        if engine is None:
            raise BadRequest("Unable to answer as no model is loaded; send a LoadRequest first")
        return engine


def _checked(spec: Any, kind: type) -> Any:
    """The client validates specs too; this guards against other senders (unpickling skips
    a dataclass's checks)."""
    from birdview.core.ask import checked

    try:
        return checked(spec, kind)
    except (TypeError, ValueError) as exc:
        raise BadRequest(str(exc)) from exc
