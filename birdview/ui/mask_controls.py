"""`MaskControls`: the study's masks (`MaskSet`) wired into the window — a mask layer on every
view, the Masks panel, the brush and eraser, undo/redo, and the masks kept beside the session.

Masks belong to one study: opening another study saves the current masks and reads that
study's (a file of another study is refused, set aside, and reported). Writes wait 0.5 s after
the last change, so a propagation streaming 20 slices or a brush stroke is one write. That
autosave compresses and fsyncs a copy of the masks on a background thread (on the GUI thread it
stalled the window 20-150 ms while slices streamed in); the writes run one at a time, in
order, and `save_now` (opening another study, closing the window) waits for them and writes
the current masks itself.

Undo: Ctrl+Z / Ctrl+Y (Ctrl+Shift+Z) belong to the active tool. With the box, brush or eraser
tool (the tools that make masks) they undo and redo mask edits; with any other tool they stay
the measurements' (`MeasureController`). The menu and the panel's buttons reach either history
whatever the tool.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import qtawesome as qta
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget

from birdview.core.geometry import Plane
from birdview.core.mask_set import MaskEntry, MaskSet
from birdview.core.mask_store import load_masks, masks_path, save_masks
from birdview.core.session import Session
from birdview.core.study_files import set_aside
from birdview.ui._observe import observe
from birdview.ui.mask_layer import BRUSH_TOOLS, MaskLayer, disk_stroke

__all__ = ["MASK_TOOLS", "MaskControls"]

logger = logging.getLogger(__name__)

MASK_TOOLS = ("box", *BRUSH_TOOLS)  # the tools under which Ctrl+Z undoes mask edits
MIN_RADIUS, MAX_RADIUS = 1, 60


class MaskControls(QObject):
    """Owns the window's `MaskSet`.

    Args:
        measure_undo: the measurements' (undo, redo) actions, whose shortcuts are lent to the
            masks while a mask tool is active.
    """

    _save_failed = Signal(str)  # from the autosave thread

    def __init__(
        self,
        host: QWidget,
        session: Session,
        views: list,
        session_dir: str | os.PathLike | None,
        measure_undo: tuple[QAction, QAction],
        report: Callable[[str], None],
        report_error: Callable[[str, str], object],
    ) -> None:
        super().__init__(host)
        self._session, self._session_dir = session, session_dir
        self._report, self._report_error = report, report_error
        self._measure_undo = measure_undo
        self.masks = MaskSet()
        self.tool = "window"
        self.brush_radius = 6
        self.layers = [MaskLayer(view, session, self.masks, self) for view in views]
        self._save_timer = QTimer(self, singleShot=True, interval=500)
        self._save_timer.timeout.connect(self._save_in_background)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mask-save")
        self._pending: Future | None = None  # the last background write
        self._save_failed.connect(self._on_save_failed)
        self.undo_action = self._action("Undo mask edit", self.masks.undo, "mdi6.undo")
        self.redo_action = self._action("Redo mask edit", self.masks.redo, "mdi6.redo")
        self.delete_action = self._action("Delete mask", self.delete_selected, "mdi6.delete")
        self.smaller_action = self._action("Smaller brush", lambda: self.resize_brush(-1))
        self.larger_action = self._action("Larger brush", lambda: self.resize_brush(+1))
        self.smaller_action.setShortcut("[")
        self.larger_action.setShortcut("]")
        for action in (self.undo_action, self.redo_action, self.smaller_action, self.larger_action):
            host.addAction(action)  # shortcuts work with the menus hidden
        self.masks.changed.connect(self._on_changed)
        self.masks.data_changed.connect(self._on_changed)
        self.masks.history_changed.connect(self._on_history)
        observe(self, session.events.volume, self._on_volume_changed)
        self._on_volume_changed()
        self._on_history()

    def _action(self, text: str, slot, icon: str | None = None) -> QAction:
        action = QAction(qta.icon(icon), text, self) if icon else QAction(text, self)
        action.triggered.connect(lambda *_: slot())
        return action

    def add_to_menu(self, menu) -> None:
        menu.addActions([self.undo_action, self.redo_action, self.delete_action])
        menu.addActions([self.smaller_action, self.larger_action])

    # -- tools and undo routing ----------------------------------------------------------------

    def set_tool(self, tool: str) -> None:
        """The views' tool changed: lend Ctrl+Z / Ctrl+Y to the masks under a mask tool."""
        self.tool = tool
        keys = QKeySequence.StandardKey
        undo, redo = self._measure_undo
        masks_own = tool in MASK_TOOLS
        mine = (QKeySequence.keyBindings(keys.Undo), QKeySequence.keyBindings(keys.Redo))
        (undo if masks_own else self.undo_action).setShortcuts([])
        (redo if masks_own else self.redo_action).setShortcuts([])
        (self.undo_action if masks_own else undo).setShortcuts(mine[0])
        (self.redo_action if masks_own else redo).setShortcuts(mine[1])

    def _on_history(self, *_: object) -> None:
        self.undo_action.setEnabled(self.masks.can_undo)
        self.redo_action.setEnabled(self.masks.can_redo)

    # -- brush ------------------------------------------------------------------------------------

    def can_paint(self) -> bool:
        """Whether a brush stroke has a mask to go on (else it says what to do)."""
        if self._session.volume is None:
            return False
        if self.masks.selected is None:
            if self.tool == "eraser":
                self._report("Eraser: select a mask in the Masks panel first")
                return False
            self.masks.add("brushed", "brush")  # painting with nothing selected starts one
        return True

    def paint(self, plane: Plane, index: int, points: list[tuple[float, float]]) -> int:
        """One brush (or eraser) stroke through ``points`` on the selected mask; returns the
        voxels changed."""
        volume, selected = self._session.volume, self.masks.selected
        if volume is None or selected is None:
            return 0
        shape = self.masks.label_slice(plane, index).shape
        pixels = disk_stroke(shape, points, self.brush_radius)
        return self.masks.paint(selected, plane, index, pixels, self.tool != "eraser")

    def resize_brush(self, step: int) -> None:
        radius = self.brush_radius + step * max(1, self.brush_radius // 4)
        self.brush_radius = max(MIN_RADIUS, min(MAX_RADIUS, radius))
        self._report(f"Brush radius {self.brush_radius} px")

    def delete_selected(self) -> bool:
        if self.masks.selected is None:
            return False
        self.masks.remove(self.masks.selected)
        return True

    # -- per study ------------------------------------------------------------------------------

    def _on_changed(self, *_: object) -> None:
        if self.masks.study is not None and self._session_dir is not None:
            self._save_timer.start()

    def _on_volume_changed(self, *_: object) -> None:
        self.save_now()
        volume = self._session.volume
        if volume is None:
            self.masks.reset(None, None)
            return
        self.masks.reset(volume.identity, volume.shape)
        if self._session_dir is None:
            return
        try:
            load_masks(volume.identity, self._session_dir, self.masks)
        except ValueError as exc:
            self._set_aside(masks_path(volume.identity, self._session_dir), exc)
        self._save_timer.stop()  # what was just read needs no write

    def _set_aside(self, path: Path, problem: Exception) -> None:
        try:
            aside = set_aside(path)
        except OSError:
            aside = path
        logger.warning("masks not restored: %s", problem)
        self._report_error(
            "Unable to restore this study's masks", f"{problem}\nThe file was kept as {aside}."
        )

    def save_now(self) -> None:
        """Write the masks now, after any background write (so an older copy never lands
        over this one)."""
        self._save_timer.stop()
        if self._pending is not None:
            self._pending.result()
            self._pending = None
        if self.masks.study is None or self._session_dir is None:
            return
        try:
            save_masks(self.masks, self._session_dir)
        except (OSError, ValueError) as exc:
            self._on_save_failed(str(exc))

    def _save_in_background(self) -> None:
        if self.masks.study is None or self._session_dir is None:
            return
        copy = _snapshot(self.masks)  # edits go on while the thread writes
        self._pending = self._writer.submit(self._write, copy, self._session_dir)

    def _write(self, masks: MaskSet, folder: str | os.PathLike) -> None:
        """On the writer thread; never raises (a failure is reported on the GUI thread)."""
        try:
            save_masks(masks, folder)
        except (OSError, ValueError) as exc:
            self._save_failed.emit(str(exc))

    def _on_save_failed(self, message: str) -> None:
        self._report_error("Unable to save this study's masks", message)


def _snapshot(masks: MaskSet) -> MaskSet:
    """A set holding copies of ``masks``' entries (names, colours, voxels) for a writer."""
    copy = MaskSet()
    entries = [MaskEntry(e.id, e.name, e.colour, e.source, e.data.copy(), e.visible) for e in masks]
    copy.reset(masks.study, masks.shape, entries)
    return copy
