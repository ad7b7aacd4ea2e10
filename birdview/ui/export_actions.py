"""The File → Export actions: pick a file, call `birdview.core.exports`, report the outcome.

Exports are anonymised when the user asked for it (File → Export → Anonymise exports) and
always in presenter mode. Every export carries the research-use notice (the core writes it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from birdview.core import exports
from birdview.core.assistant import Assistant
from birdview.core.session import Session

__all__ = ["Exporter"]

logger = logging.getLogger(__name__)


class Exporter:
    """Writes the open study's findings; ``ask_path`` is a file dialog (replaceable in tests).

    Args:
        anonymise: tells whether identity must be left out right now.
        report: shows a message (status bar) after an export.
        report_error: shows an error (dialog).
    """

    def __init__(
        self,
        parent: QWidget,
        session: Session,
        assistant: Assistant,
        *,
        anonymise: Callable[[], bool],
        report: Callable[[str], None],
        report_error: Callable[[str, str], None],
        folder: Callable[[], str] = os.getcwd,
    ) -> None:
        self._parent = parent
        self._session = session
        self._assistant = assistant
        self._anonymise = anonymise
        self._report = report
        self._report_error = report_error
        self._folder = folder
        self.ask_path: Callable[[str, str, str], str] = self._dialog

    def anonymised(self) -> bool:
        """Whether an export made now leaves out patient identity."""
        return bool(self._anonymise())

    def png(self) -> str | None:
        """The main view's slice with the boxes on it."""
        session, volume = self._session, self._session.volume
        if volume is None or session.window is None:
            return None
        plane = session.main_plane
        index = session.slice_index(plane)
        path = self.ask_path(
            "Export annotated PNG", self._name(f"{plane.value}-{index + 1}.png"), "PNG (*.png)"
        )
        if not path:
            return None
        placed = self._assistant.boxes_on(plane, index)
        boxes = [p.box for p in placed]
        colours = [p.colour for p in placed]
        user = self._assistant.user_box
        if user is not None and user.plane is plane and user.slice_index == index:
            boxes.append(user)
            colours.append(len(exports.BOX_COLOURS) - 1)
        return self._write(
            "PNG",
            path,
            lambda: exports.export_png(
                volume,
                plane,
                index,
                session.window,
                boxes,
                path,
                anonymise=self.anonymised(),
                colours=colours,
                zoom=2.0 if min(volume.shape[1:3]) < 300 else 1.0,
            ),
        )

    def json(self) -> str | None:
        """Every box with the question and answer that produced it, in px, voxels and mm."""
        volume = self._session.volume
        if volume is None:
            return None
        path = self.ask_path(
            "Export findings as JSON", self._name("findings.json"), "JSON (*.json)"
        )
        if not path:
            return None
        record = self._record()
        return self._write(
            "JSON",
            path,
            lambda: exports.export_json(record, volume, path, anonymise=self.anonymised()),
        )

    def dicom_sr(self) -> str | None:
        """A DICOM SR measurement report referencing the source images (DICOM studies only)."""
        volume = self._session.volume
        if volume is None:
            return None
        items = [(p.box, self._turn_text(p.turn_id)) for p in self._assistant.placed_boxes()]
        if self._assistant.user_box is not None:
            items.append((self._assistant.user_box, "Region drawn by the user"))
        if not items:
            self._report_error("Nothing to export", "There are no boxes to write into a DICOM SR.")
            return None
        path = self.ask_path("Export DICOM SR", self._name("sr.dcm"), "DICOM (*.dcm)")
        if not path:
            return None
        model = self._assistant.model.info().name or "BirdView"
        return self._write(
            "DICOM SR",
            path,
            lambda: exports.export_dicom_sr(
                volume, items, path, anonymise=self.anonymised(), model_name=model
            ),
        )

    # -- internals -----------------------------------------------------------------------------

    def _record(self):
        return self._assistant.to_record()

    def _turn_text(self, turn_id: int) -> str:
        turn = self._assistant.turn(turn_id)
        return f"Q: {turn.question}\nA: {turn.answer}" if turn is not None else ""

    def _name(self, suffix: str) -> str:
        volume = self._session.volume
        stem = f"birdview-{volume.short_id}-" if volume is not None else "birdview-"
        return str(Path(self._folder()) / f"{stem}{suffix}")

    def _write(self, kind: str, path: str, write: Callable[[], object]) -> str | None:
        try:
            result = write()
        except (OSError, ValueError) as exc:
            logger.warning("%s export failed: %s", kind, type(exc).__name__)
            self._report_error(f"Could not export {kind}", str(exc))
            return None
        skipped = getattr(result, "skipped", ())
        note = f" ({len(skipped)} boxes could not be written)" if skipped else ""
        self._report(f"Exported {kind} to {path}{note}")
        return path

    def _dialog(self, title: str, default: str, file_filter: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self._parent, title, default, file_filter)
        return path
