"""`PacsControls`: the File → PACS… entry, the browser window, and the results it sends back.

"Send to PACS" sends the open study's results as DICOM instances of that study
(`birdview.core.exports_dicom`): the SR of the conversation, drawn regions and measurements,
the key images (a Key Object Selection and their annotated pictures as Secondary Captures, or
the slice on screen when none is marked), the open label overlay as a SEG and the Masks panel's
masks as another. The study's
identity is kept (never anonymised): a PACS files an instance by its patient and study.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, QStandardPaths
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QWidget

from birdview.core import exports_dicom
from birdview.core.assistant import Assistant
from birdview.core.mask_exports import masks_from_set
from birdview.core.session import Session
from birdview.pacs.cache import StudyCache
from birdview.ui.pacs_server_form import CACHE_LIMIT_KEY

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
        key_images: Callable[[], tuple] = tuple,
        label_map: Callable[[], object] = lambda: None,
        masks: Callable[[], object] = lambda: None,
        report_error: Callable[[str, str], None],
    ) -> None:
        self._parent, self._session, self._assistant = parent, session, assistant
        self._open_path, self._measurements = open_path, measurements
        self._key_images, self._label_map, self._masks = key_images, label_map, masks
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
                self.prepare_results,
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

    def prepare_results(self) -> Callable[[], tuple[list[str], str]] | None:
        """What the open study's results are now, as a function that writes them as DICOM
        files in a temporary folder and returns (paths, summary, e.g. "SR + 2 secondary
        captures + SEG (3 segments)"); or None (said why). The state is read here, on the GUI
        thread; the function runs in the PACS worker (a SEG of a large CT takes seconds).

        The function raises ValueError (another study, not DICOM) or OSError.
        """
        session, volume = self._session, self._session.volume
        if volume is None or session.window is None:
            self._report_error("Nothing to send", "Open a study first.")
            return None
        plane = session.main_plane
        current = (plane, session.slice_index(plane))
        keys = tuple(self._key_images())
        boxes = {
            slot: self._boxes_on(*slot)
            for slot in [current, *((k.plane, k.slice_index) for k in keys)]
        }
        record, window = self._assistant.to_record(), session.window
        label_map, measurements = self._label_map(), tuple(self._measurements())
        masks = self._mask_snapshot()

        def build() -> tuple[list[str], str]:
            results = exports_dicom.results_for_pacs(
                record, volume, window=window, current=current, key_images=keys,
                label_map=label_map, masks=masks,
                boxes_on=lambda p, i: boxes.get((p, i), ((), ())),
                measurements=measurements,
            )  # fmt: skip
            paths = results.write(tempfile.mkdtemp(prefix="birdview-pacs-"))
            notes = f" ({'; '.join(results.notes)})" if results.notes else ""
            return paths, results.summary + notes

        return build

    def _mask_snapshot(self) -> tuple:
        """The Masks panel's non-empty masks, copied: the user may paint while they are sent."""
        mask_set = self._masks()
        if mask_set is None:
            return ()
        return tuple(
            replace(mask, voxels=np.array(mask.voxels, dtype=bool))
            for mask in masks_from_set(mask_set)
        )

    def _boxes_on(self, plane, index: int):
        placed = self._assistant.boxes_on(plane, index)
        return [p.box for p in placed], [p.colour for p in placed]

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
    value = QSettings().value(CACHE_LIMIT_KEY, DEFAULT_CACHE_GB)
    try:
        return int(float(value) * 1e9)
    except (TypeError, ValueError):
        return int(DEFAULT_CACHE_GB * 1e9)
