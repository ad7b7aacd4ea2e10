"""`PacsRunner`: one PACS call at a time off the GUI thread, with progress and cancel.

Like `StudyLoader`, each call runs in a superqt worker and its outcome comes back through
queued signals tagged with the call's number, so a late answer to an abandoned call is dropped.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from superqt.utils import create_worker

__all__ = ["PacsRunner", "TaskContext"]

logger = logging.getLogger(__name__)


class TaskContext:
    """What a running call gets: ``progress(done, total)``, ``cancelled()``, and
    ``series_done(folder)`` to announce a series that has fully arrived."""

    def __init__(self, runner: PacsRunner, number: int) -> None:
        self._runner, self.number = runner, number
        self.stop = threading.Event()

    def progress(self, done: int, total: int) -> None:
        self._runner._job_progressed.emit(self.number, done, total)

    def cancelled(self) -> bool:
        return self.stop.is_set()

    def series_done(self, folder: str) -> None:
        self._runner._job_series.emit(self.number, folder)


class PacsRunner(QObject):
    finished = Signal(str, object)  # kind, result
    failed = Signal(str, object)  # kind, exception (PacsError, RetrieveCancelled, ...)
    progressed = Signal(int, int)
    series_arrived = Signal(str)  # folder of a series that is complete
    busy_changed = Signal(bool)

    _job_ended = Signal(int, str, object, bool)
    _job_progressed = Signal(int, int, int)
    _job_series = Signal(int, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._numbers = itertools.count(1)
        self._job: TaskContext | None = None
        self._job_ended.connect(self._on_ended)
        self._job_progressed.connect(self._on_progressed)
        self._job_series.connect(self._on_series)

    @property
    def busy(self) -> bool:
        return self._job is not None

    def run(self, kind: str, call: Callable[[TaskContext], object]) -> None:
        """Run ``call(context)`` in a worker; ``finished`` or ``failed`` tells how it went."""
        self.cancel()
        job = TaskContext(self, next(self._numbers))
        was_busy, self._job = self.busy, job
        create_worker(self._work, job, kind, call, _connect={"errored": self._on_errored})
        if not was_busy:
            self.busy_changed.emit(True)

    def cancel(self) -> None:
        if self._job is not None:
            logger.info("cancelling PACS call %d", self._job.number)
            self._job.stop.set()

    def _work(self, job: TaskContext, kind: str, call: Callable) -> None:
        try:
            self._job_ended.emit(job.number, kind, call(job), False)
        except Exception as exc:  # noqa: BLE001 - every failure is reported by signal
            self._job_ended.emit(job.number, kind, exc, True)

    def _on_ended(self, number: int, kind: str, outcome: object, failed: bool) -> None:
        if self._job is None or self._job.number != number:
            return
        self._job = None
        self.busy_changed.emit(False)
        (self.failed if failed else self.finished).emit(kind, outcome)

    def _on_progressed(self, number: int, done: int, total: int) -> None:
        if self._job is not None and self._job.number == number:
            self.progressed.emit(done, total)

    def _on_series(self, number: int, folder: str) -> None:
        if self._job is not None and self._job.number == number:
            self.series_arrived.emit(folder)

    def _on_errored(self, exc: Exception) -> None:
        self.failed.emit("", exc)
