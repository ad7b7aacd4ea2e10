"""The File → Export actions: pick a file, call `birdview.core.exports`, report the outcome.

Every export is made from the assistant's record of the conversation (`Assistant.to_record`),
which the core checks against the open study. Exports are anonymised when the user asked for
it (File → Export → Anonymise exports) and always in presenter mode. The save dialog opens in
the folder of the last export, else the study's folder, else the home folder — never the
working directory, which is wherever the app happened to be started.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from birdview.core import exports, exports_sr, mask_exports
from birdview.core.assistant import Assistant
from birdview.core.labels_overlay import LabelOverlay
from birdview.core.measure_set import MeasurementSet
from birdview.core.session import Session
from birdview.core.slab import Slab
from birdview.ui.settings import Settings

__all__ = ["Exporter"]

logger = logging.getLogger(__name__)


class Exporter:
    """Writes the open study's conversation; ``ask_path`` is a file dialog (replaceable in
    tests: it gets the title, the suggested path and the file filter).

    Args:
        settings: remembers the folder of the last export.
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
        settings: Settings,
        anonymise: Callable[[], bool],
        report: Callable[[str], None],
        report_error: Callable[[str, str], None],
        measurements: MeasurementSet | None = None,
        masks: object = None,
    ) -> None:
        self._parent = parent
        self._session = session
        self._assistant = assistant
        self._settings = settings
        self._anonymise = anonymise
        self._report = report
        self._report_error = report_error
        self._measurements = measurements
        self.masks = masks  # the study's MaskSet: with masks, the SR comes with SEG + NIfTI
        self.ask_path: Callable[[str, str, str], str] = self._dialog
        self.labels: LabelOverlay | None = None  # drawn into PNGs with a legend when shown
        # The thick slab the views show (every view shows the same): exported ROI statistics
        # are the projection's, as on screen, and the PNG draws the projection.
        self.slab: Callable[[], Slab] = Slab

    def anonymised(self) -> bool:
        """Whether an export made now leaves out patient identity."""
        return bool(self._anonymise())

    def png(self, resolution: float = 1.0) -> str | None:
        """The main view's slice with the boxes on it; ``resolution`` 2 doubles the output
        pixels (on top of the enlargement small images always get, so a 256-pixel MR does
        not export as a stamp)."""
        session, volume = self._session, self._session.volume
        if volume is None or session.window is None:
            return None
        plane = session.main_plane
        index = session.slice_index(plane)
        suffix = "" if resolution == 1.0 else f"-{resolution:g}x"
        default = f"{plane.value}-{index + 1}{suffix}.png"
        path = self._ask("Export annotated PNG", default, "PNG (*.png)")
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
                self._assistant.to_record(),
                volume,
                path,
                plane=plane,
                slice_index=index,
                window=session.window,
                boxes=boxes,
                colours=colours,
                anonymise=self.anonymised(),
                zoom=resolution * (2.0 if min(volume.shape[1:3]) < 300 else 1.0),
                measurements=self._measured(),
                labels=self.labels,
                slab=self.slab(),
            ),
        )

    def json(self) -> str | None:
        """Every question and answer, and every box in px, voxels and mm."""
        volume = self._session.volume
        if volume is None:
            return None
        path = self._ask("Export findings as JSON", "findings.json", "JSON (*.json)")
        if not path:
            return None
        return self._write(
            "JSON",
            path,
            lambda: exports.export_json(
                self._assistant.to_record(),
                volume,
                path,
                anonymise=self.anonymised(),
                measurements=self._measured(),
                slab=self.slab(),
            ),
        )

    def _measured(self) -> tuple:
        """The user's measurements, for JSON and SR exports."""
        return self._measurements.items if self._measurements is not None else ()

    def dicom_sr(self) -> str | None:
        """A DICOM SR measurement report referencing the source images (DICOM studies only)."""
        volume = self._session.volume
        if volume is None:
            return None
        answered = any(turn.finished for turn in self._assistant.turns)
        masks = self._named_masks()
        if not (answered or masks) and self._assistant.user_box is None and not self._measured():
            self._report_error(
                "Nothing to export",
                "There are no answers, measurements or drawn region to write into a DICOM SR.",
            )
            return None
        path = self._ask("Export DICOM SR", "sr.dcm", "DICOM (*.dcm)")
        if not path:
            return None
        if masks:  # the SR's volumetric groups reference the SEG written beside it
            return self._write(
                "DICOM SR + SEG + NIfTI",
                path,
                lambda: mask_exports.export_masks(
                    self._assistant.to_record(),
                    volume,
                    path,
                    masks,
                    measurements=self._measured(),
                    anonymise=self.anonymised(),
                    slab=self.slab(),
                ),
            )
        return self._write(
            "DICOM SR",
            path,
            lambda: exports_sr.export_dicom_sr(
                self._assistant.to_record(),
                volume,
                path,
                anonymise=self.anonymised(),
                measurements=self._measured(),
                slab=self.slab(),
            ),
        )

    def _named_masks(self) -> list:
        """The study's non-empty masks (none when they belong to another study)."""
        volume = self._session.volume
        if self.masks is None or volume is None or self.masks.study != volume.identity:
            return []
        return mask_exports.masks_from_set(self.masks, volume=volume)  # measures cached

    # -- internals -----------------------------------------------------------------------------

    def _ask(self, title: str, suffix: str, file_filter: str) -> str:
        """The path the user picked (remembering its folder), or "" when cancelled."""
        volume = self._session.volume
        stem = f"birdview-{volume.short_id}-" if volume is not None else "birdview-"
        path = self.ask_path(title, str(self.start_folder() / f"{stem}{suffix}"), file_filter)
        if path:
            self._settings.set_export_directory(os.path.dirname(os.path.abspath(path)))
        return path

    def start_folder(self) -> Path:
        """Where the save dialog opens: the last export's folder, else the study's, else
        home."""
        last = self._settings.export_directory()
        if last and Path(last).is_dir():
            return Path(last)
        volume = self._session.volume
        if volume is not None and volume.sources:
            source = Path(volume.sources[0].path)
            folder = source if source.is_dir() else source.parent
            if folder.is_dir():
                return folder
        return Path.home()

    def _write(self, kind: str, path: str, write: Callable[[], object]) -> str | None:
        try:
            result = write()
        except (OSError, ValueError) as exc:
            logger.warning("%s export failed: %s", kind, type(exc).__name__)
            self._report_error(f"Could not export {kind}", str(exc))
            return None
        skipped = getattr(result, "skipped", ())
        note = f" ({len(skipped)} left out: {'; '.join(skipped[:3])})" if skipped else ""
        # Folders are often named after the patient: with identity hidden, the file name only.
        shown = os.path.basename(path) if self._session.phi_hidden else path
        self._report(f"Exported {kind} to {shown}{note}")
        return path

    def _dialog(self, title: str, default: str, file_filter: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self._parent, title, default, file_filter)
        return path
