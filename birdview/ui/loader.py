"""`StudyLoader`: scans and loads studies off the GUI thread, with progress and cancel.

One job at a time: a new request cancels the running one, whose late results are dropped.
Each job runs in a superqt worker (the global QThreadPool); what it finds comes back to the GUI
thread through this object's queued signals, tagged with the job's number.
"""

from __future__ import annotations

import itertools
import logging
import threading
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QThreadPool, Signal
from superqt.utils import create_worker

from birdview.core.io.catalog import SeriesEntry, check_cancel

__all__ = ["StudyLoader"]

logger = logging.getLogger(__name__)


@dataclass
class _Job:
    number: int
    cancelled: threading.Event = field(default_factory=threading.Event)


class StudyLoader(QObject):
    """Runs ``scan`` → ``read_preview`` → ``load`` → ``to_canonical`` in a worker thread."""

    scanned = Signal(object)  # Catalog
    previewed = Signal(object)  # np.ndarray: one slice to show while the volume loads
    progressed = Signal(int, int)  # done, total
    loaded = Signal(object, object, object)  # canonical Volume, SeriesEntry, acquisition Plane
    failed = Signal(object)  # the exception (LoadCancelled when cancelled)
    busy_changed = Signal(bool)

    # Worker → GUI thread, tagged with the job number so stale jobs are ignored.
    _job_scanned = Signal(int, object)
    _job_previewed = Signal(int, object)
    _job_progressed = Signal(int, int, int)
    _job_ended = Signal(int, object)  # (volume, entry, plane) | exception | None

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._numbers = itertools.count(1)
        self._job: _Job | None = None
        self._job_scanned.connect(self._on_job_scanned)
        self._job_previewed.connect(self._on_job_previewed)
        self._job_progressed.connect(self._on_job_progressed)
        self._job_ended.connect(self._on_job_ended)

    @property
    def busy(self) -> bool:
        return self._job is not None

    def open_path(self, path: str) -> None:
        """Scan ``path``, then load its first series."""
        self._start(path, None)

    def load_entry(self, entry: SeriesEntry) -> None:
        """Load one series of an earlier scan."""
        self._start(None, entry)

    def cancel(self) -> None:
        """Ask the running job to stop; it ends with ``failed(LoadCancelled)``."""
        if self._job is not None:
            logger.info("cancelling load job %d", self._job.number)
            self._job.cancelled.set()

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Cancel and wait for the worker threads (call before the window goes away)."""
        self.cancel()
        self._job = None
        QThreadPool.globalInstance().waitForDone(timeout_ms)

    # -- worker thread -----------------------------------------------------------------------

    def _start(self, path: str | None, entry: SeriesEntry | None) -> None:
        was_busy = self.busy
        self.cancel()
        job = _Job(next(self._numbers))
        self._job = job
        # superqt keeps the worker alive until it finishes.
        create_worker(self._run, job, path, entry, _connect={"errored": self._on_worker_errored})
        if not was_busy:
            self.busy_changed.emit(True)

    def _run(self, job: _Job, path: str | None, entry: SeriesEntry | None) -> None:
        """The whole job, in the worker thread; it never raises (results go by signal)."""
        try:
            self._job_ended.emit(job.number, self._load(job, path, entry))
        except Exception as exc:  # noqa: BLE001 - every failure is reported by signal
            self._job_ended.emit(job.number, exc)

    def _load(self, job: _Job, path: str | None, entry: SeriesEntry | None) -> tuple | None:
        from birdview.core import geometry, io

        cancel = job.cancelled.is_set
        if entry is None:
            catalog = io.scan(path, cancel=cancel)
            self._job_scanned.emit(job.number, catalog)
            if not catalog.entries:
                return None
            # A segmentation beside its images is opened over them, not as the study.
            images = [e for e in catalog.entries if e.modality not in ("SEG", "RTSTRUCT")]
            entry = (images or catalog.entries)[0]
        check_cancel(cancel)
        preview = io.read_preview(entry)
        if preview is not None:
            self._job_previewed.emit(job.number, preview)
        check_cancel(cancel)
        raw = io.load(
            entry,
            progress=lambda done, total: self._job_progressed.emit(job.number, done, total),
            cancel=cancel,
        )
        check_cancel(cancel)
        plane = geometry.acquisition_plane(raw)
        volume = geometry.to_canonical(raw)
        volume.identity  # noqa: B018 - hashed here, off the GUI thread, before sessions need it
        check_cancel(cancel)
        return (volume, entry, plane)

    # -- GUI thread --------------------------------------------------------------------------

    def _is_current(self, number: int) -> bool:
        return self._job is not None and self._job.number == number

    def _on_job_scanned(self, number: int, catalog: object) -> None:
        if self._is_current(number):
            self.scanned.emit(catalog)

    def _on_job_previewed(self, number: int, preview: object) -> None:
        if self._is_current(number):
            self.previewed.emit(preview)

    def _on_job_progressed(self, number: int, done: int, total: int) -> None:
        if self._is_current(number):
            self.progressed.emit(done, total)

    def _on_job_ended(self, number: int, result: object) -> None:
        if not self._is_current(number):
            return
        self._job = None
        if isinstance(result, BaseException):
            self.failed.emit(result)
        elif result is not None:
            self.loaded.emit(*result)
        self.busy_changed.emit(False)

    def _on_worker_errored(self, exc: Exception) -> None:
        # _run catches everything; this only guards against superqt re-raising in the GUI thread.
        self.failed.emit(exc)
