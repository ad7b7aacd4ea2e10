"""The propagation runs of `SegmentControls` (a mixin): a request that streams a mask's slices
back (*Propagate*, a volume sweep's *Masks from answer*, *Segment text*), one at a time.

A run is a dict: the mask it fills, the plane, the volume, the undo batch it is one step of,
the slices done of the total, and the worker's request handle once sent. The request (the whole
volume: 10 MB for the sample CT) is written from a thread; slices, VoxTell's patch progress and
the reply cross to the GUI thread through the controls' queued signals, and anything of a run
that is no longer the current one (cancelled away, study changed) is dropped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from birdview.core.geometry import Plane
from birdview.core.masks import voxel_volume_ml
from birdview.inference.protocol import WorkerFailure

__all__ = ["PropagationRuns", "nearest_filled", "seed_plane"]

logger = logging.getLogger(__name__)


class PropagationRuns:
    """Run bookkeeping for `SegmentControls`, which owns the signals (``_sent``, ``_streamed``,
    ``_stepped``, ``_propagated``, ``progress``, ``busy_changed``), the actions, ``_client``,
    ``_range`` and ``_run``."""

    @property
    def busy(self) -> bool:
        return self._run is not None

    def cancel(self) -> None:
        """Stop the running propagation; the slices that arrived stay."""
        run, client = self._run, self._bridge.client
        if run is not None and client is not None:
            if run["handle"] is None:  # still being sent: cancelled once it is
                run["cancel_asked"] = True
            else:
                client.cancel(run["handle"].request_id)
            self._report("Cancelling the propagation…")

    def _start_run(self, what: str, mask_id, plane: Plane, first: int, last: int, **how):
        if self._run is not None:
            self._report(f"{what}: a propagation is running; cancel it first")
            return False
        client = self._client(what)
        if client is None:
            return False
        volume = self._session.volume
        batch = self._masks.batch()  # the whole run is one undo step
        batch.__enter__()
        if callable(mask_id):  # a new mask (a text prompt's): made inside that step
            mask_id = mask_id()
        run = {"mask": mask_id, "plane": plane, "volume": volume, "batch": batch}
        run["total"], run["done"] = last - first + 1, 0
        self._run, run["handle"] = run, None
        request = partial(
            client.propagate,
            volume,
            first=first,
            last=last,
            plane=plane,
            intensity_range=self._range(volume),
            on_slice=lambda s: self._streamed.emit(s, run),
            on_progress=lambda done, total: self._stepped.emit(done, total, run),
            on_done=lambda r: self._propagated.emit(r, run),
            **how,
        )
        threading.Thread(target=self._send, args=(request, run), daemon=True).start()
        self._set_busy(True)
        self.progress_unit = "slices"
        self.progress.emit(0, run["total"])
        self._report(f"{what}…")
        return True

    def _send(self, request: Callable[[], Any], run: dict) -> None:
        """On a thread: the request carries the whole volume (10 MB for the sample CT) and
        the pipe write waits for the (niced) worker to read it: 20-80 ms on the GUI thread."""
        try:
            self._sent.emit(request(), run)
        except Exception as exc:  # noqa: BLE001 - ends the run as a failure, on the GUI thread
            self._sent.emit(exc, run)

    def _on_sent(self, handle: Any, run: dict) -> None:
        if isinstance(handle, Exception):
            failure = WorkerFailure("", "internal", f"Unable to send the request: {handle}")
            self._on_propagated(failure, run)
            return
        run["handle"] = handle
        if run.get("cancel_asked") and run is self._run and self._bridge.client is not None:
            self._bridge.client.cancel(handle.request_id)

    def _on_streamed(self, piece: Any, run: dict) -> None:
        if run is not self._run or run["volume"] is not self._session.volume:
            return  # cancelled away, or the study changed meanwhile
        try:
            self._masks.put_slice(run["mask"], run["plane"], piece.slice_index, piece.mask.unpack())
        except (KeyError, IndexError, ValueError) as exc:  # the mask was deleted meanwhile
            logger.info("propagated slice dropped: %s", exc)
        run["done"] += 1
        if "patches" not in run:  # VoxTell's bar counts its patches; the slices follow at once
            self.progress.emit(run["done"], run["total"])

    def _on_stepped(self, done: int, total: int, run: dict) -> None:
        if run is not self._run:
            return
        run["patches"] = (done, total)
        self.progress_unit = "patches"
        self.progress.emit(done, total)

    def _on_propagated(self, result: object, run: dict) -> None:
        if run is not self._run:
            return
        self._run, self.last_reply = None, result
        run["batch"].__exit__(None, None, None)
        self._set_busy(False)
        if isinstance(result, WorkerFailure):
            self._report_error("Unable to propagate the mask", result.message)
            return
        if run["volume"] is not self._session.volume:
            return
        try:
            entry = self._masks.get(run["mask"])
        except KeyError:
            return
        # Only the volume here (a count); the panel computes the rest in a thread.
        volume_ml = entry.voxels * voxel_volume_ml(run["volume"])
        state = "cancelled" if getattr(result, "cancelled", False) else "done"
        if getattr(result, "method", "") == "volume":
            self._report(_describe_voxtell(state, run, entry.name, volume_ml))
            return
        self._report(
            f"Propagation {state}: {run['done']} of {run['total']} {run['plane'].value} "
            f"slices, {entry.name} {volume_ml:.2f} mL"
        )

    def _set_busy(self, busy: bool) -> None:
        self.cancel_action.setEnabled(busy)
        self.propagate_action.setEnabled(not busy)
        self.busy_changed.emit(busy)


_OTHER_AXES = {Plane.AXIAL: (1, 2), Plane.CORONAL: (0, 2), Plane.SAGITTAL: (0, 1)}


def seed_plane(data: np.ndarray, shown: Plane) -> Plane:
    """The plane a (k, j, i) mask is propagated through: the one where all its voxels lie on
    a single slice (the view its box or brush stroke was drawn on; ``shown`` first when
    several qualify), else ``shown`` (the main view's plane: a mask already spread over
    several slices of every plane)."""
    shown = Plane(shown)
    for plane in (shown, *(p for p in Plane if p is not shown)):
        if np.count_nonzero(data.any(axis=_OTHER_AXES[plane])) == 1:
            return plane
    return shown


def nearest_filled(data: np.ndarray, plane: Plane, index: int) -> int:
    """The slice of ``plane`` nearest ``index`` where the mask has voxels (axial k; the other
    planes count j and i as `geometry.slice_count` does)."""
    filled = np.flatnonzero(data.any(axis=_OTHER_AXES[plane]))
    return int(filled[np.argmin(np.abs(filled - index))])


def _describe_voxtell(state: str, run: dict, name: str, volume_ml: float) -> str:
    done, total = run.get("patches", (0, 0))
    if state == "cancelled":
        return f"VoxTell cancelled after patch {done} of {total}: {name} stays empty"
    return f"VoxTell done: {name} {volume_ml:.1f} mL"
