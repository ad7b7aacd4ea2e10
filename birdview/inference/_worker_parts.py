"""The worker's helpers: its log file, streaming in pieces, and failures as data (no Qt)."""

from __future__ import annotations

import logging
import logging.handlers
import time
from typing import Any

from birdview.inference.protocol import WorkerFailure

logger = logging.getLogger(__name__)

# Streamed text goes out at most this often (~30 updates a second).
_TOKEN_INTERVAL_S = 0.03
_OOM_HINT = (
    "; free memory by closing other programs, choose a smaller precision (nf4 or int8), "
    "a smaller image or a smaller sweep batch"
)


class BadRequest(ValueError):
    """The request is malformed; answered with kind "bad_request"."""


def configure_worker_logging() -> None:
    """The worker's own rotating file beside the viewer's (two processes must not rotate one
    file), plus warnings on stderr."""
    from birdview._logging import _DropHeaderQuotes, log_folder

    root = logging.getLogger()
    root.setLevel(logging.INFO)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    handlers[0].setLevel(logging.WARNING)
    try:
        folder = log_folder()
        folder.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                folder / "birdview-worker.log", maxBytes=2_000_000, backupCount=3, encoding="utf-8"
            )
        )
    except OSError:
        pass  # a read-only home must not stop the worker; stderr still gets warnings
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(_DropHeaderQuotes())
        root.addHandler(handler)
    logging.captureWarnings(True)


class TokenStream:
    """Streams answer text in pieces at most every `_TOKEN_INTERVAL_S` (the first at once):
    a display needs no more, and the viewer then wakes for a few dozen messages, not one per
    token. The pieces still add up to the answer."""

    def __init__(self, send: Any) -> None:
        self._send = send
        self._pending: list[str] = []
        self._sent_at = 0.0

    def put(self, text: str) -> None:
        self._pending.append(text)
        if time.monotonic() - self._sent_at >= _TOKEN_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._send("".join(self._pending))
            self._pending.clear()
            self._sent_at = time.monotonic()


def failure_for(request_id: str, exc: BaseException) -> WorkerFailure:
    """Classify an exception raised while serving a request."""
    from birdview.inference.errors import ModelLoadError

    text = f"{type(exc).__name__}: {exc}"
    if _is_oom(exc):
        logger.error("out of memory: %s", type(exc).__name__)
        return WorkerFailure(request_id, "oom", f"Out of memory ({text}){_OOM_HINT}")
    # A checkpoint that cannot load and a malformed request are the user's to fix and go back
    # as data, which the viewer (or `birdview ask`) shows: log them for the record only, not
    # on stderr, or the terminal shows the same message twice.
    if isinstance(exc, ModelLoadError):
        logger.info("load failed: %s", exc)
        return WorkerFailure(request_id, "load", str(exc))
    if isinstance(exc, BadRequest):
        logger.info("bad request: %s", exc)
        return WorkerFailure(request_id, "bad_request", str(exc))
    if isinstance(exc, (ValueError, TypeError)) and not isinstance(exc, ArithmeticError):
        # The engine and loader raise these for input they cannot use.
        logger.warning("request refused: %s", text)
        return WorkerFailure(request_id, "bad_request", text)
    logger.exception("internal error", exc_info=exc)
    return WorkerFailure(request_id, "internal", text)


def _is_oom(exc: BaseException | None) -> bool:
    """Out of memory, here or in the chain of causes (the engine wraps torch's error)."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
            return True
        if "out of memory" in str(exc).lower():
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def memory_bytes(model: Any) -> int:
    try:
        return int(model.get_memory_footprint())
    except Exception:  # not a transformers model: count parameters and buffers
        try:
            tensors = list(model.parameters()) + list(model.buffers())
            return int(sum(t.numel() * t.element_size() for t in tensors))
        except Exception:
            return 0
