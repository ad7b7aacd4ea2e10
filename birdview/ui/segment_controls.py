"""The segmentation requests of the user's flow, each ending in the study's `MaskSet`:

- *Segment box*: the drawn box becomes a mask on its slice ("SAM box"); the status line gives
  its mL at once and its axes and HU (a pass over the whole volume) from a thread when ready,
  unless the mask was edited meanwhile.
- *Propagate*: the selected mask is carried through the slices of the plane it was drawn on
  (axial, coronal or sagittal) from its slice nearest the shown one; slices stream into the
  mask as the worker makes them (one undo step for the whole run), with progress, and
  *Cancel* keeps what arrived.
- *Masks from answer*: the model's boxes become masks in one click: a volume sweep's per-slice
  boxes are propagated with the "boxes" mode into one mask; a single answer's boxes are each
  segmented on their slice ("from model box").
- *Segment text*: a text prompt goes to a SAM3 segmenter through every slice, or to VoxTell,
  which segments the whole volume at once; its slices stream into the mask like a
  propagation's (one undo step). Without a text-prompted model the panel says what to get.

The segmentation model (a SAM / MedSAM / SAM2 / SAM3 checkpoint folder or a VoxTell model
folder, chosen once with
*Choose segmentation model…* and remembered) runs in the model worker beside the language model;
it is loaded on first use. The client answers on its reader thread: results cross to the GUI
thread through queued signals. The propagation runs' bookkeeping is `PropagationRuns`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import qtawesome as qta
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from birdview.core import geometry
from birdview.core.assistant import Assistant
from birdview.core.box import Box
from birdview.core.geometry import Plane
from birdview.core.mask_set import MaskSet, plane_slicer
from birdview.core.masks import measure, voxel_volume_ml
from birdview.core.model_input import render_for_model, volume_intensity_range
from birdview.core.session import Session
from birdview.core.volume import Volume
from birdview.inference.protocol import WorkerConfig, WorkerFailure
from birdview.inference.segmentation import engines
from birdview.ui.propagation_runs import PropagationRuns, nearest_filled, seed_plane
from birdview.ui.settings import Settings

__all__ = ["SegmentControls", "VOXTELL_MISSING", "seed_plane"]

logger = logging.getLogger(__name__)

MASK_NAME = "segmented"
VOXTELL_MISSING = (
    "The segmentation model takes no text. For text → 3D choose a VoxTell model folder (with "
    "the voxtell package: pip install 'birdview[voxtell]'), or a SAM3 checkpoint to segment "
    "from text slice by slice (Measure → Choose segmentation model…)."
)


class SegmentControls(PropagationRuns, QObject):
    """The segmentation actions; every result goes into ``masks``.

    Signals:
        busy_changed(bool): a propagation started or ended.
        progress(done, total): slices of the running propagation, or VoxTell's sliding-window
            patches (``progress_unit`` says which).
    """

    busy_changed = Signal(bool)
    progress = Signal(int, int)
    _segmented = Signal(object, object)  # result, (box, volume, name, source)
    _sent = Signal(object, object)  # RequestHandle or the exception of sending it, context
    _streamed = Signal(object, object)  # PropagateSlice, context
    _stepped = Signal(int, int, object)  # VoxTell's patches done, in all, context
    _propagated = Signal(object, object)  # PropagateReply or failure, context
    _segmenter_loaded = Signal(object)
    _measured = Signal(object, object)  # MaskMeasures or None, (mask id, version, box, volume)

    def __init__(
        self,
        parent: QWidget,
        session: Session,
        assistant: Assistant,
        bridge: Any,
        masks: MaskSet,
        settings: Settings,
        report: Callable[[str], None],
        report_error: Callable[[str, str], None],
    ) -> None:
        super().__init__(parent)
        self._parent, self._session, self._assistant = parent, session, assistant
        self._bridge, self._masks, self._settings = bridge, masks, settings
        self._report, self._report_error = report, report_error
        self._loaded_dir = ""  # the folder sent to the worker's segmenter
        self._ranges: dict[int, tuple[float, float]] = {}  # volume token → model input range
        self._run: dict | None = None  # the running propagation
        self.last_measures: Any = None  # of the last box segmented, once its numbers came
        self.measuring = 0  # segmented masks whose numbers are being computed in threads
        self.last_reply: Any = None  # of the last propagation, for tests
        self.progress_unit = "slices"  # what `progress` counts
        self.segment_action = self._make("Segment box", self.segment_box, "mdi6.auto-fix")
        self.segment_action.setToolTip("Segment what the drawn box frames on its slice")
        self.propagate_action = self._make("Propagate mask", self.propagate, "mdi6.layers-triple")
        self.propagate_action.setToolTip("Carry the selected mask through the volume")
        self.cancel_action = self._make("Cancel propagation", self.cancel, "mdi6.stop")
        self.cancel_action.setEnabled(False)
        self.answer_action = self._make(
            "Masks from answer", self.masks_from_answer, "mdi6.vector-square-plus"
        )
        self.answer_action.setToolTip("Turn the model's boxes (the selected answer) into masks")
        self.choose_action = self._make("Choose segmentation model…", self.choose_model)
        self._segmented.connect(self._on_segmented)
        self._sent.connect(self._on_sent)
        self._streamed.connect(self._on_streamed)
        self._stepped.connect(self._on_stepped)
        self._propagated.connect(self._on_propagated)
        self._segmenter_loaded.connect(self._on_segmenter_loaded)
        self._measured.connect(self._on_measured)

    def _make(self, text: str, slot, icon: str | None = None) -> QAction:
        action = QAction(qta.icon(icon), text, self) if icon else QAction(text, self)
        action.triggered.connect(lambda *_: slot())
        return action

    def add_to_menu(self, menu: QMenu) -> None:
        menu.addSeparator()
        menu.addActions(
            [self.segment_action, self.propagate_action, self.cancel_action, self.answer_action]
        )
        menu.addAction(self.choose_action)

    def choose_model(self) -> str:
        """Ask for a segmentation checkpoint folder; remembered. "" when cancelled."""
        folder = QFileDialog.getExistingDirectory(
            self._parent,
            "Segmentation model folder (SAM, MedSAM, SAM2, SAM3, VoxTell)",
            self._settings.segmenter_dir(),
        )
        if folder:
            self._settings.set_segmenter_dir(folder)
        return folder

    def text_engine(self) -> bool:
        """Whether the segmenter takes text prompts (SAM3, VoxTell): the loaded one, or what
        the chosen folder is (`engines.for_folder`) when it is not loaded yet."""
        client = self._bridge.client
        loaded = getattr(client, "segmenter_loaded", None) if client is not None else None
        folder = self._settings.segmenter_dir()
        if loaded is not None and folder == self._loaded_dir:
            engine = engines.for_model_type(loaded.engine)
        else:
            engine = engines.for_folder(folder) if folder else None
        return engine is not None and "text" in engine.prompts

    # -- requests ------------------------------------------------------------------------------

    def _client(self, what: str) -> Any:
        """The client with the segmenter loaded (or on its way), or None with a message."""
        client = self._bridge.client
        if client is None:
            self._report(f"{what}: load a model first; the segmenter runs in its worker")
            return None
        folder = self._settings.segmenter_dir() or self.choose_model()
        if not folder:
            return None
        if folder != self._loaded_dir or client.segmenter_loaded is None:
            # Requests run in order in the worker: the next request waits for this load.
            client.load_segmenter(WorkerConfig(folder), on_done=self._segmenter_loaded.emit)
            self._loaded_dir = folder
        return client

    def segment_box(self, box: Box | None = None, *, source: str = "SAM box") -> bool:
        """Send a box's slice (default: the drawn box) to the segmenter; False (with a
        message) when it cannot."""
        volume, box = self._session.volume, box or self._assistant.user_box
        if volume is None or box is None:
            self._report("Segment box: draw a box on a slice first (the box tool)")
            return False
        client = self._client("Segment box")
        if client is None:
            return False
        image = render_for_model(
            volume, box.plane, box.slice_index, intensity_range=self._range(volume)
        )
        name = box.label or MASK_NAME
        context = (box, volume, name, source)
        client.segment(image, box, on_done=lambda r: self._segmented.emit(r, context))
        self._report("Segmenting…")
        return True

    def propagate(self) -> bool:
        """Carry the selected mask through every slice of the plane it was drawn on (see
        `seed_plane`), from its slice nearest the one shown in that plane."""
        volume, entry = self._session.volume, self._masks.selected_entry
        if volume is None or entry is None or not entry.voxels:
            self._report("Propagate: segment a box first (or select a mask with voxels)")
            return False
        plane = seed_plane(entry.data, self._session.main_plane)
        start = nearest_filled(entry.data, plane, self._session.slice_index(plane))
        seed = entry.data[plane_slicer(plane, start, entry.data.shape)] != 0
        count = geometry.slice_count(volume, plane)
        what = f"Propagate through {plane.value} slices"
        return self._start_run(what, entry.id, plane, 0, count - 1, start=start, mask=seed)

    def masks_from_answer(self) -> int:
        """Masks from the selected answer's boxes (else the latest answer with boxes); returns
        how many requests were sent."""
        turn = self._answer_turn()
        if turn is None:
            self._report("Masks from answer: ask the model to find something first")
            return 0
        if turn.is_sweep:
            boxes = turn.boxes
            name = boxes[0].label or turn.question or "found"
            mask_id = self._masks.add(name, "from model box")
            indices = [b.slice_index for b in boxes]
            sent = self._start_run(
                "Masks from answer", mask_id, turn.plane, min(indices), max(indices), boxes=boxes
            )
            return int(sent)
        sent = 0
        for box in turn.boxes:
            sent += self.segment_box(box, source="from model box")
        return sent

    def segment_text(self, text: str) -> bool:
        """A text prompt through every axial slice with SAM3, or through the whole volume at
        once with VoxTell (its slices come back as a propagation's)."""
        text = text.strip()
        if not text or self._session.volume is None:
            return False
        if not self.text_engine():
            self._report(VOXTELL_MISSING)
            return False
        count = geometry.slice_count(self._session.volume, Plane.AXIAL)
        new_mask = partial(self._masks.add, text, "text prompt")
        return self._start_run("Segment text", new_mask, Plane.AXIAL, 0, count - 1, text=text)

    # -- single-slice results --------------------------------------------------------------------

    def _range(self, volume: Volume) -> tuple[float, float]:
        if volume.token not in self._ranges:
            self._ranges = {volume.token: volume_intensity_range(volume)}
        return self._ranges[volume.token]

    def _answer_turn(self) -> Any:
        placed = self._assistant.selected_box()
        if placed is not None:
            return self._assistant.turn(placed.turn_id)
        finished = [t for t in self._assistant.turns if t.finished and t.boxes]
        return finished[-1] if finished else None

    def _on_segmenter_loaded(self, result: object) -> None:
        if isinstance(result, WorkerFailure):
            self._loaded_dir = ""
            self._report_error("Unable to load the segmentation model", result.message)

    def _on_segmented(self, result: object, context: tuple) -> None:
        box, volume, name, source = context
        if isinstance(result, WorkerFailure):
            if result.kind != "bad_request" or "no segmentation model" not in result.message:
                self._report_error("Unable to segment the box", result.message)
            return  # a failed load was reported already
        if volume is not self._session.volume:
            return  # the study changed meanwhile
        mask_id = self._masks.add(name, source)
        self._masks.put_slice(mask_id, box.plane, box.slice_index, result.mask.unpack())
        entry = self._masks.get(mask_id)
        # Axes and HU are a pass over the whole volume (44-106 ms on the sample CT): a thread,
        # on a copy of these voxels (taken before anything, the status line's slots included,
        # can edit them).
        job = (mask_id, entry.version, box, volume)
        self.measuring += 1
        threading.Thread(target=self._measure, args=(entry.data != 0, job), daemon=True).start()
        self._report(_describe_count(entry.voxels * voxel_volume_ml(volume), box))

    def _measure(self, voxels: np.ndarray, job: tuple) -> None:
        """On a thread, on a copy of the mask; never raises (None: no numbers)."""
        try:
            found = measure(voxels, job[3])
        except Exception:  # noqa: BLE001 - reported as missing numbers, not a crash
            logger.exception("segmented mask's numbers failed")
            found = None
        self._measured.emit(found, job)

    def _on_measured(self, found: Any, job: tuple) -> None:
        self.measuring -= 1
        mask_id, version, box, volume = job
        if found is None or volume is not self._session.volume:
            return
        try:
            entry = self._masks.get(mask_id)
        except KeyError:
            return  # deleted meanwhile
        if entry.version != version:
            return  # edited meanwhile: these numbers are not its voxels' (the panel's are)
        entry.remember_measures(version, found)  # the panel shows them without a second pass
        self.last_measures = found
        self._report(_describe(found, box, "HU" if volume.modality == "CT" else ""))


def _describe_count(volume_ml: float, box: Box) -> str:
    """What a segmented box says before its axes and HU are known."""
    where = f"{box.plane.value} slice {box.slice_index}"
    if not volume_ml:
        return f"Segment box: the model found nothing in the box on {where}"
    return f"Segmented on {where}: {volume_ml:.2f} mL (measuring…)"


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
