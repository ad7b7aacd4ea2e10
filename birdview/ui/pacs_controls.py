"""`PacsControls`: the File → PACS… entry, the browser window, and the SR it sends back.

The SR sent to a PACS is written from the open study's conversation, drawn region and
measurements with the study's identity kept (never anonymised): a PACS files an instance by
its patient and study, and an anonymised SR would land in no study at all.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QWidget

from birdview.core import exports_sr
from birdview.core.assistant import Assistant
from birdview.core.session import Session
from birdview.pacs.cache import StudyCache

__all__ = ["PacsControls"]

logger = logging.getLogger(__name__)
DEFAULT_CACHE_GB = 5.0


class PacsControls:
    """Owns the PACS browser (made on first use) and writes the SR that "Send" sends."""

    def __init__(
        self,
        parent: QWidget,
        session: Session,
        assistant: Assistant,
        open_path: Callable[[str], None],
        *,
        measurements: Callable[[], tuple] = tuple,
        report_error: Callable[[str, str], None],
    ) -> None:
        self._parent, self._session, self._assistant = parent, session, assistant
        self._open_path, self._measurements = open_path, measurements
        self._report_error = report_error
        self._presenter = False
        self.browser = None
        self.action = QAction("&PACS…", parent)
        self.action.setShortcut(QKeySequence("Ctrl+Shift+P"))
        self.action.setStatusTip("Find studies on a PACS, retrieve them, send findings back")
        self.action.triggered.connect(self.show)

    def add_to_menu(self, menu: QMenu, before: QAction | None = None) -> None:
        menu.insertAction(before, self.action) if before else menu.addAction(self.action)

    def show(self):
        if self.browser is None:
            from birdview.ui.pacs_browser import PacsBrowser

            self.browser = PacsBrowser(
                str(_config_folder() / "pacs_servers.json"),
                StudyCache(_cache_folder(), _cache_limit_bytes()),
                self._open_path,
                self.write_sr,
                self._parent,
            )
            self.browser.set_presenter(self._presenter)
        self.browser.show()
        self.browser.raise_()
        return self.browser

    def set_presenter(self, on: bool) -> None:
        self._presenter = bool(on)
        if self.browser is not None:
            self.browser.set_presenter(on)

    def write_sr(self) -> str | None:
        """The current study's findings as a DICOM SR in a temporary file, or None (said why)."""
        volume = self._session.volume
        if volume is None:
            self._report_error("Nothing to send", "Open a study first.")
            return None
        path = Path(tempfile.mkdtemp(prefix="birdview-sr-")) / f"birdview-{volume.short_id}.dcm"
        try:
            exports_sr.export_dicom_sr(
                self._assistant.to_record(), volume, path, measurements=self._measurements()
            )
        except (OSError, ValueError) as exc:
            logger.warning("SR for PACS failed: %s", type(exc).__name__)
            self._report_error("Could not make the DICOM SR", str(exc))
            return None
        return str(path)

    def close(self) -> None:
        if self.browser is not None:
            self.browser.close()


def _config_folder() -> Path:
    return Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppConfigLocation))


def _cache_folder() -> Path:
    cache = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.CacheLocation)
    return Path(cache) / "pacs"


def _cache_limit_bytes() -> int:
    """``pacs/cache_limit_gb`` in the settings, 5 GB when unset."""
    value = QSettings().value("pacs/cache_limit_gb", DEFAULT_CACHE_GB)
    try:
        return int(float(value) * 1e9)
    except (TypeError, ValueError):
        return int(DEFAULT_CACHE_GB * 1e9)
