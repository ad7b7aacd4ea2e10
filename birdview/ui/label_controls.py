"""`LabelControls`: the segmentation overlay's wiring — its model, the label layer on every
view, the legend, and the File menu's "Open segmentation…", "Show bundled labels" and
"Close segmentation".

Labels belong to one study: opening another study closes them, and the file that was open
over a study is remembered beside its session and reopened with it. Files are read in a
worker thread (a label map is read, decoded and checked in about 0.1 s, over the 50 ms the UI
may stall); a result that arrives after the study changed is dropped.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable

import qtawesome as qta
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget
from superqt.utils import create_worker

from birdview.core.assistant import Assistant
from birdview.core.labels import LabelMap, LabelMismatchError
from birdview.core.labels_io import LABEL_FILE_FILTER, bundled_labels_path, open_labels
from birdview.core.labels_overlay import LabelOverlay
from birdview.core.labels_store import (
    LabelsChoice,
    forget_labels,
    load_labels_choice,
    save_labels_choice,
)
from birdview.core.session import Session
from birdview.ui._observe import observe
from birdview.ui.label_layer import attach_label_layers
from birdview.ui.label_legend import LabelLegend

__all__ = ["LabelControls"]

logger = logging.getLogger(__name__)

Report = Callable[[str, str], object]


class LabelControls(QObject):
    """Owns the `LabelOverlay` of the main window and the actions that open label maps."""

    finished = Signal(object)  # the opened LabelMap, or None when refused or dropped
    _job_ended = Signal(int, object, str)  # job number, LabelMap or exception, file path

    def __init__(
        self,
        host: QWidget,
        session: Session,
        views: list,
        *,
        assistant: Assistant | None = None,
        session_dir: str | os.PathLike | None = None,
        report_error: Report | None = None,
    ) -> None:
        super().__init__(host)
        self._host = host
        self._session = session
        self._session_dir = session_dir
        self._report_error = report_error
        self._numbers = itertools.count(1)
        self._job: tuple[int, int] | None = None  # (job number, volume token) of the last open
        self._job_ended.connect(self._on_job_ended)
        self._restore: LabelsChoice | None = None  # how the file being reopened was drawn
        self._save_timer = QTimer(self, singleShot=True, interval=400)  # a slider drag: one write
        self._save_timer.timeout.connect(self.save_now)
        _preload_readers()
        self.overlay = LabelOverlay()
        self.layers = attach_label_layers(views, session, self.overlay)
        self.legend = LabelLegend(self.overlay, session, assistant)
        for view in views:
            view.hovered.connect(self._on_hovered)
        self.open_action = self._action("Open &segmentation…", self.open_dialog, "mdi6.layers")
        self.bundled_action = self._action(
            "Show &bundled labels", self.open_bundled, "mdi6.layers-plus"
        )
        self.bundled_action.setToolTip("The sample CT's TotalSegmentator label map")
        self.close_action = self._action("&Close segmentation", self.close, "mdi6.layers-off")
        observe(self, session.events.volume, self._on_volume_changed)
        observe(self, self.overlay.events.label_map, self._on_labels_changed)
        for name in ("opacity", "outline", "visible", "hidden"):
            observe(self, getattr(self.overlay.events, name), self._on_display_changed)
        self._on_volume_changed()
        self._on_labels_changed()

    def _action(self, text: str, slot: Callable[[], object], icon: str) -> QAction:
        action = QAction(qta.icon(icon), text, self)
        action.triggered.connect(lambda *_: slot())
        return action

    def add_to_menu(self, menu: QMenu, before: QAction | None = None) -> None:
        """Place the segmentation actions in ``menu``, before ``before`` or at the end."""
        actions = [self.open_action, self.bundled_action, self.close_action]
        if before is None:
            menu.addActions(actions)
        else:
            menu.insertActions(before, actions)

    # -- opening -----------------------------------------------------------------------------

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self._host, "Open segmentation", self._start_folder(), LABEL_FILE_FILTER
        )
        if path:
            self.open_path(path)

    def open_entry(self, entry: object) -> bool:
        """A DICOM SEG series picked in the series browser goes over the open study, as
        PACS viewers do; True when it was taken here (anything else loads as images)."""
        modality = getattr(entry, "modality", "")
        paths = getattr(entry, "paths", ())
        if modality != "SEG" or len(paths) != 1 or self._session.volume is None:
            return False
        self.open_path(paths[0])
        return True

    def open_bundled(self) -> None:
        path = bundled_labels_path(self._session.volume)
        if path is not None:
            self.open_path(path)

    def open_path(self, path: str) -> None:
        """Read the segmentation at ``path`` for the open study in the background; then show
        it, or report why it was refused and keep what was shown. Ends with `finished`."""
        volume = self._session.volume
        if volume is None:
            name = os.path.basename(path)
            self._report("Unable to open the segmentation", f"{name!r}: open a study first")
            self.finished.emit(None)
            return
        number = next(self._numbers)
        self._job = (number, volume.token)
        create_worker(self._read, number, path, volume, _start_thread=True)

    def _read(self, number: int, path: str, volume) -> None:
        """In the worker thread; never raises (the result goes by signal)."""
        try:
            self._job_ended.emit(number, open_labels(path, volume), path)
        except Exception as exc:  # noqa: BLE001 - every refusal is reported on the GUI thread
            self._job_ended.emit(number, exc, path)

    def _on_job_ended(self, number: int, result: object, path: str) -> None:
        volume = self._session.volume
        current = volume is not None and self._job == (number, volume.token)
        if not current:
            self.finished.emit(None)  # another open, or another study, came since
            return
        self._job = None
        if isinstance(result, BaseException):
            logger.info("segmentation refused: %s", type(result).__name__)
            self._report("Unable to open the segmentation", str(result))
            self.finished.emit(None)
            return
        self.overlay.open(result)
        restore, self._restore = self._restore, None
        if restore is not None and restore.path == os.path.abspath(path):
            self._apply(restore)
        self._remember(path)
        self.finished.emit(result)

    def _apply(self, choice: LabelsChoice) -> None:
        self.overlay.set_opacity(choice.opacity)
        self.overlay.set_outline(choice.outline)
        self.overlay.set_visible(choice.visible)
        self.overlay.set_hidden(choice.hidden)

    def show(self, label_map: LabelMap) -> None:
        """Show a label map made in code (e.g. a segmentation engine's masks, through
        `birdview.core.labels.label_map_from_array`) over the open study.

        Raises:
            LabelMismatchError: it was made for another study than the open one.
        """
        volume = self._session.volume
        if volume is None or label_map.study_identity != volume.identity:
            raise LabelMismatchError(
                f"Unable to show {label_map.source!r} as it was made for another study"
            )
        self._job = None  # a file still being read would replace it
        self.overlay.open(label_map)

    def close(self) -> None:
        if self.overlay.label_map is not None:
            self.overlay.close()
            self._remember(None)

    # -- session -> labels -------------------------------------------------------------------

    def _on_volume_changed(self, *_: object) -> None:
        volume = self._session.volume
        self._save_timer.stop()  # what changed was saved with its own study already
        self.bundled_action.setEnabled(bundled_labels_path(volume) is not None)
        self.open_action.setEnabled(volume is not None)
        self._job = None  # a read still running was for the study before
        self._restore = None
        if self.overlay.label_map is not None:
            self.overlay.open(None)  # labels belong to the study they were opened on
        if volume is not None:
            self._reopen_remembered()

    def _on_labels_changed(self, *_: object) -> None:
        self.close_action.setEnabled(self.overlay.label_map is not None)

    def _on_hovered(self, ijk: object) -> None:
        """Name the label under the mouse in the legend (a teaching aid)."""
        label_map, volume = self.overlay.label_map, self._session.volume
        found = None
        if ijk is not None and label_map is not None and volume is not None:
            i, j, k = ijk
            if label_map.volume.shape == volume.shape:
                found = label_map.by_value(int(label_map.volume.voxels[k, j, i]))
        self.legend.show_hovered(found.name if found is not None else "")

    def _reopen_remembered(self) -> None:
        volume = self._session.volume
        if self._session_dir is None or volume is None:
            return
        try:
            choice = load_labels_choice(volume.identity, self._session_dir)
        except ValueError as exc:
            self._report("Unable to reopen the segmentation", str(exc))
            return
        if choice is not None and os.path.isfile(choice.path):
            self.open_path(choice.path)
            self._restore = choice

    def _on_display_changed(self, *_: object) -> None:
        label_map = self.overlay.label_map
        if label_map is not None and label_map.path:
            self._save_timer.start()

    def save_now(self) -> None:
        """Write how the open segmentation is drawn now (the window calls this on close)."""
        self._save_timer.stop()
        label_map = self.overlay.label_map
        if label_map is not None and label_map.path:
            self._remember(label_map.path)

    def _remember(self, path: str | None) -> None:
        volume = self._session.volume
        if self._session_dir is None or volume is None:
            return
        try:
            if path is None:
                forget_labels(volume.identity, self._session_dir)
                return
            o = self.overlay
            choice = LabelsChoice(path, o.opacity, o.outline, o.visible, o.hidden)
            save_labels_choice(volume.identity, choice, self._session_dir)
        except (OSError, ValueError) as exc:
            logger.warning("could not remember the segmentation: %s", type(exc).__name__)

    def _start_folder(self) -> str:
        volume = self._session.volume
        if volume is not None and volume.sources:
            return os.path.dirname(os.path.dirname(volume.sources[0].path))
        return ""

    def _report(self, title: str, message: str) -> None:
        if self._report_error is not None:
            self._report_error(title, message)


def _preload_readers() -> None:
    """Import the NIfTI reader while the window is built (~70 ms, before it shows), not on the
    first open in a worker thread: that import held the GIL and froze the UI (~270 ms)."""
    import nibabel.nifti1  # noqa: F401
    import nibabel.volumeutils  # noqa: F401
