"""*Segment box*: the box drawn on a slice becomes a mask there, shown in the Labels layer, with
its volume, axial diameters and mean HU in the status bar.

The segmentation model (a SAM / MedSAM / SAM2 checkpoint folder, chosen once with *Choose
segmentation model…* and remembered) runs in the model worker beside the language model; it is
loaded on first use. The client answers on its reader thread: the result crosses to the GUI
thread through a queued signal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import qtawesome as qta
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from birdview.core.assistant import Assistant
from birdview.core.box import Box
from birdview.core.labels import label_map_from_array
from birdview.core.masks import measure, put_slice
from birdview.core.model_input import render_for_model, volume_intensity_range
from birdview.core.session import Session
from birdview.core.volume import Volume
from birdview.inference.protocol import WorkerConfig, WorkerFailure
from birdview.ui.settings import Settings

__all__ = ["SegmentControls"]

logger = logging.getLogger(__name__)

_MESSAGE_MS = 15000
MASK_NAME = "segmented"


class SegmentControls(QObject):
    """The *Segment box* and *Choose segmentation model…* actions.

    Args:
        bridge: the window's `InferenceBridge` (its client carries the requests).
        labels: the window's `LabelControls` (``show`` puts the mask on the views).
        report: shows a line in the status bar.
        report_error: ``(title, message)`` for failures.
    """

    _segmented = Signal(object, object)  # result, (box, volume): from the client's thread
    _segmenter_loaded = Signal(object)

    def __init__(
        self,
        parent: QWidget,
        session: Session,
        assistant: Assistant,
        bridge: Any,
        labels: Any,
        settings: Settings,
        report: Callable[[str], None],
        report_error: Callable[[str, str], None],
    ) -> None:
        super().__init__(parent)
        self._parent, self._session, self._assistant = parent, session, assistant
        self._bridge, self._labels, self._settings = bridge, labels, settings
        self._report, self._report_error = report, report_error
        self._loaded_dir = ""  # the folder sent to the worker's segmenter
        self._ranges: dict[int, tuple[float, float]] = {}  # volume token → model input range
        self.last_measures: Any = None  # of the last mask shown, for tests and exports
        self.segment_action = QAction(qta.icon("mdi6.auto-fix"), "Segment box", self)
        self.segment_action.setToolTip("Segment what the drawn box frames on its slice")
        self.segment_action.triggered.connect(lambda *_: self.segment_box())
        self.choose_action = QAction("Choose segmentation model…", self)
        self.choose_action.triggered.connect(lambda *_: self.choose_model())
        self._segmented.connect(self._on_segmented)
        self._segmenter_loaded.connect(self._on_segmenter_loaded)

    def add_to_menu(self, menu: QMenu) -> None:
        menu.addSeparator()
        menu.addActions([self.segment_action, self.choose_action])

    def choose_model(self) -> str:
        """Ask for a segmentation checkpoint folder; remembered. "" when cancelled."""
        folder = QFileDialog.getExistingDirectory(
            self._parent,
            "Segmentation model folder (SAM, MedSAM, SAM2)",
            self._settings.segmenter_dir(),
        )
        if folder:
            self._settings.set_segmenter_dir(folder)
        return folder

    def segment_box(self) -> bool:
        """Send the drawn box's slice to the segmenter; False (with a message) when it cannot."""
        volume, box = self._session.volume, self._assistant.user_box
        if volume is None or box is None:
            self._report("Segment box: draw a box on a slice first (the box tool)")
            return False
        client = self._bridge.client
        if client is None:
            self._report("Segment box: load a model first; the segmenter runs in its worker")
            return False
        folder = self._settings.segmenter_dir() or self.choose_model()
        if not folder:
            return False
        if folder != self._loaded_dir or client.segmenter_loaded is None:
            # Requests run in order in the worker: the segment below waits for this load.
            client.load_segmenter(WorkerConfig(folder), on_done=self._segmenter_loaded.emit)
            self._loaded_dir = folder
        image = render_for_model(
            volume, box.plane, box.slice_index, intensity_range=self._range(volume)
        )
        client.segment(
            image, box, on_done=lambda result: self._segmented.emit(result, (box, volume))
        )
        self._report("Segmenting…")
        return True

    def _range(self, volume: Volume) -> tuple[float, float]:
        if volume.token not in self._ranges:
            self._ranges = {volume.token: volume_intensity_range(volume)}
        return self._ranges[volume.token]

    def _on_segmenter_loaded(self, result: object) -> None:
        if isinstance(result, WorkerFailure):
            self._loaded_dir = ""
            self._report_error("Unable to load the segmentation model", result.message)

    def _on_segmented(self, result: object, context: tuple[Box, Volume]) -> None:
        box, volume = context
        if isinstance(result, WorkerFailure):
            if result.kind != "bad_request" or "no segmentation model" not in result.message:
                self._report_error("Unable to segment the box", result.message)
            return  # a failed load was reported already
        if volume is not self._session.volume:
            return  # the study changed meanwhile
        mask = np.zeros(volume.shape, np.uint8)
        put_slice(mask, box.plane, box.slice_index, result.mask.unpack())
        label_map = label_map_from_array(
            mask, volume, {1: MASK_NAME}, source="Segment box", kind="segmentation"
        )
        self._labels.show(label_map)
        found = measure(mask.astype(bool), volume)
        self.last_measures = found
        self._report(_describe(found, box, "HU" if volume.modality == "CT" else ""))


def _describe(found: Any, box: Box, unit: str) -> str:
    where = f"{box.plane.value} slice {box.slice_index}"
    if not found.voxels:
        return f"Segment box: the model found nothing in the box on {where}"
    text = f"Segmented on {where}: {found.volume_ml:.2f} mL"
    if found.diameters is not None:
        d = found.diameters
        text += f", axial long axis {d.long_mm:.1f} mm, short axis {d.short_mm:.1f} mm"
    if np.isfinite(found.mean):
        text += f", mean {found.mean:.0f} ± {found.sd:.0f} {unit}".rstrip()
    return text
