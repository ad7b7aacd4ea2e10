"""Starting and stopping one worker process (for `client.InferenceClient`; no torch here).

The worker module is named as a string and imported in the child only, so the viewer's
process never imports it (it pulls in torch).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from birdview.inference.errors import WorkerCrashedError
from birdview.inference.protocol import PROTOCOL_VERSION, Hello, ShutdownRequest

logger = logging.getLogger(__name__)

WORKER_MODULE = "birdview.inference.worker"
WORKER_ENV = "BIRDVIEW_WORKER"  # the model runtime's executable, overriding the search below
WORKER_NICE_ENV = "BIRDVIEW_WORKER_NICE"  # how much lower the model runs than the viewer
_WORKER_NICE = 10


def _worker_entry(connection: Connection, module: str) -> None:
    """The child's target: import the worker (and with it torch) there, and run it."""
    # No progress bars in the worker: nobody reads its stderr as a terminal, and tqdm's lock
    # is a multiprocessing semaphore that a worker killed mid-answer (a hang, a crash, a
    # viewer closed while busy) leaves behind, so the viewer's exit warned "leaked semaphore".
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    _lower_priority()
    importlib.import_module(module).main(connection)


def _lower_priority() -> None:
    """Run the model below the viewer: on a machine with few cores the model's threads would
    otherwise take the cores the viewer's UI thread needs to repaint (the UI stalled past
    50 ms during a volume sweep). Set before torch starts its threads, which inherit it."""
    nice = int(os.environ.get(WORKER_NICE_ENV, _WORKER_NICE))
    if nice > 0 and hasattr(os, "nice"):
        try:
            os.nice(nice)
        except OSError:  # not allowed here: the model runs at the viewer's priority
            pass


@dataclass
class WorkerProcess:
    """A started, handshaken worker: its process, the viewer's end of the pipe, its `Hello`."""

    process: BaseProcess
    connection: Connection
    hello: Hello

    @property
    def pid(self) -> int:
        return self.hello.pid


def spawn_worker(*, start_timeout_s: float, module: str = WORKER_MODULE) -> WorkerProcess:
    """Start a worker with the ``spawn`` method (never fork: Qt and CUDA may be running) and
    wait for its `Hello`.

    Raises:
        WorkerCrashedError: the worker died, stayed silent for ``start_timeout_s``, or speaks
            another protocol version.
    """
    context = multiprocessing.get_context("spawn")
    runtime = runtime_executable()
    if runtime is not None:
        context.set_executable(runtime)
    elif importlib.util.find_spec("torch") is None:  # the viewer-only install
        raise WorkerCrashedError(
            "Unable to start the model worker as PyTorch is not installed here; install the "
            "model runtime with: pip install 'birdview[inference]'"
        )
    ours, theirs = context.Pipe(duplex=True)
    process = context.Process(
        target=_worker_entry,
        args=(theirs, module),
        name="birdview-worker",
        daemon=True,  # multiprocessing ends it when the viewer exits
    )
    process.start()
    theirs.close()  # keep only the child's copy, so its death reads as EOF here
    try:
        hello = _handshake(ours, process, start_timeout_s)
    except WorkerCrashedError:
        stop_worker(process, ours, timeout_s=0.0)
        raise
    logger.info("worker %d started, protocol %d", hello.pid, hello.version)
    return WorkerProcess(process, ours, hello)


def runtime_executable() -> str | None:
    """The executable the worker runs in: ``$BIRDVIEW_WORKER`` if set (from a source install a
    Python interpreter that has torch; from a frozen viewer a ``birdview-worker`` runtime);
    else None (this interpreter) from a source install, or, in a frozen viewer (which bundles
    no torch), the ``birdview-worker`` runtime in the viewer's folder or next to it.

    Raises:
        WorkerCrashedError: frozen, and no runtime is found.
    """
    override = os.environ.get(WORKER_ENV)
    if override:
        return override
    if not getattr(sys, "frozen", False):
        return None
    name = "birdview-worker" + (".exe" if sys.platform == "win32" else "")
    here = os.path.dirname(os.path.abspath(sys.executable))
    for folder in (here, os.path.dirname(here)):
        candidate = os.path.join(folder, "birdview-worker", name)
        if os.path.isfile(candidate):
            return candidate
    raise WorkerCrashedError(
        f"Unable to start the model worker as the model runtime ({name}) is not installed "
        f"next to BirdView; install it, or set {WORKER_ENV} to its path"
    )


def _handshake(connection: Connection, process: BaseProcess, timeout_s: float) -> Hello:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if connection.poll(0.05):
                hello = connection.recv()
                break
        except (EOFError, OSError) as exc:
            raise WorkerCrashedError(
                f"Unable to start the model worker as it exited with code {process.exitcode!r} "
                "before saying hello; see birdview-worker.log in the log folder"
            ) from exc
        if not process.is_alive():
            raise WorkerCrashedError(
                f"Unable to start the model worker as it exited with code {process.exitcode!r}"
            )
    else:
        raise WorkerCrashedError(
            f"Unable to start the model worker as it did not answer within {timeout_s:g} s"
        )
    if not isinstance(hello, Hello) or hello.version != PROTOCOL_VERSION:
        raise WorkerCrashedError(
            f"Unable to talk to the model worker as it says {hello!r}; expected protocol "
            f"version {PROTOCOL_VERSION}. Reinstall BirdView so both halves match"
        )
    return hello


def stop_worker(
    process: BaseProcess, connection: Connection, *, timeout_s: float, polite: bool = True
) -> None:
    """Stop a worker for good: ask it to leave, then SIGTERM, then SIGKILL; always reap it."""
    if polite and process.is_alive():
        try:
            connection.send(ShutdownRequest())
        except (OSError, ValueError):
            pass  # already gone or closed
    if process.is_alive():
        process.join(timeout_s)
    if process.is_alive():
        process.terminate()
        process.join(2.0)
    if process.is_alive():
        process.kill()
        process.join()
    else:
        process.join(0)  # reap a dead child, so no zombie is left
    connection.close()
    logger.info("worker %s stopped (exit code %r)", process.pid, process.exitcode)


def kill_worker(process: BaseProcess) -> None:
    """SIGKILL now (a hung or stopped worker cannot be asked); the caller still reaps it."""
    try:
        process.kill()
    except (OSError, ValueError):
        pass  # already reaped or closed
