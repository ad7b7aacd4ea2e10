"""`StudyOpener`: from a chosen or dropped path to a volume in the session.

The main window's loader scans and loads in the background; this asks it to, from the file and
folder dialogs or a path, and puts what it reports into the session, the status bar and the
error reporter. A SEG picked in the series browser opens over the study instead of as images.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QWidget

from birdview.core.errors import LoadCancelled
from birdview.core.io.catalog import Catalog
from birdview.core.session import Session
from birdview.ui.errors import ErrorReporter
from birdview.ui.loader import StudyLoader
from birdview.ui.settings import Settings
from birdview.ui.status_bar import StatusBar
from birdview.ui.view_layout import ViewLayout

__all__ = ["FILE_FILTER", "StudyOpener", "one_path"]

logger = logging.getLogger(__name__)

FILE_FILTER = (
    "Images (*.dcm *.DCM *.ima *.nii *.nii.gz *.png *.jpg *.jpeg *.tif *.tiff *.bmp *.zip "
    "DICOMDIR);;All files (*)"
)


class StudyOpener(QObject):
    """Opens studies for one window, through its loader."""

    def __init__(
        self,
        window: QWidget,
        session: Session,
        settings: Settings,
        loader: StudyLoader,
        status: StatusBar,
        reporter: ErrorReporter,
        view_layout: ViewLayout,
        open_seg: Callable[[object], bool],
    ) -> None:
        super().__init__(window)
        self._window = window
        self._session = session
        self._settings = settings
        self._loader = loader
        self._status = status
        self._reporter = reporter
        self._view_layout = view_layout
        self._open_seg = open_seg
        loader.scanned.connect(self._on_scanned)
        loader.previewed.connect(view_layout.show_preview)
        loader.progressed.connect(status.set_progress)
        loader.loaded.connect(self._on_loaded)
        loader.failed.connect(self._on_load_failed)
        loader.busy_changed.connect(status.set_busy)
        status.cancel_requested.connect(loader.cancel)

    def open_path(self, path: str) -> None:
        """Scan ``path`` (file, folder or .zip) and open its first series, in the background."""
        path = os.fspath(path)
        self._settings.add_recent_path(path)
        name = os.path.basename(os.path.normpath(path)) or path
        self._status.showMessage("Opening…" if self._session.phi_hidden else f"Opening {name}…")
        self._loader.open_path(path)

    def open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self._window, "Open file", self._settings.last_directory(), FILE_FILTER
        )
        if path:
            self._settings.set_last_directory(os.path.dirname(path))
            self.open_path(path)

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self._window, "Open folder", self._settings.last_directory()
        )
        if path:
            self._settings.set_last_directory(os.path.dirname(os.path.normpath(path)))
            self.open_path(path)

    def open_entry(self, entry: object) -> None:
        """Load a series the browser asked for (a SEG goes over the open study instead)."""
        if self._open_seg(entry):
            return
        self._status.showMessage("Loading series…")
        self._loader.load_entry(entry)

    def _on_scanned(self, catalog: Catalog) -> None:
        self._session.open_catalog(catalog)
        if catalog.problems:
            self._reporter.report_problems(catalog.problems, fatal=not catalog.entries)
        elif not catalog.entries:
            self._reporter.report("Nothing to open", f"No images were found in {catalog.root!r}.")

    def _on_loaded(self, volume: object, entry: object, plane: object) -> None:
        session = self._session
        session.open_volume(volume, entry, plane)
        notes = list(volume.warnings)
        problems = session.catalog.problems if session.catalog is not None else []
        if problems:
            noun = "file" if len(problems) == 1 else "files"
            notes.append(f"{len(problems)} {noun} could not be read (see the series browser)")
        self._status.showMessage("; ".join(notes) if notes else "Ready", 0 if notes else 4000)
        self._view_layout.main_view.setFocus()

    def _on_load_failed(self, exc: BaseException) -> None:
        self._view_layout.clear_preview()
        self._reporter.report_exception(exc)
        if not isinstance(exc, LoadCancelled):
            logger.info("load failed: %s", type(exc).__name__)


def one_path(paths: list[str]) -> str:
    """What to scan for dropped items: the item itself, or the folder several files share."""
    if len(paths) == 1:
        return paths[0]
    parents = {os.path.dirname(os.path.normpath(p)) for p in paths}
    return parents.pop() if len(parents) == 1 else paths[0]
