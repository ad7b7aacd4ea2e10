"""`MeasureController`: the measurement layers of the views, their actions and their autosave.

It keeps one `MeasurementSet` per open study: when a study opens, the set is saved under the
study it belonged to and reset to the new study's saved measurements
(`birdview.core.measure_store`, which refuses a file of another study); a file that cannot be
read is set aside, never overwritten. Every change is saved shortly after it is made.

Its actions (undo, redo, delete, clear) go in a "Measure" menu next to the measurement tools,
which are registered with the other tools (`birdview.ui.actions`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import partial
from pathlib import Path

import qtawesome as qta
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QInputDialog, QMenu, QMenuBar, QWidget

from birdview.core.measure import measure
from birdview.core.measure_set import MeasurementSet
from birdview.core.measure_store import load_measurements, measurements_path, save_measurements
from birdview.core.session import Session
from birdview.core.study_files import set_aside
from birdview.ui._observe import observe
from birdview.ui.measure_layer import MeasureLayer

__all__ = ["MeasureController"]

logger = logging.getLogger(__name__)

_AUTOSAVE_MS = 800
_NAMES = {
    "ruler": "Ruler",
    "angle": "Angle",
    "ellipse": "Ellipse ROI",
    "rectangle": "Rectangle ROI",
    "arrow": "Arrow",
    "text": "Text note",
}


class MeasureController(QObject):
    """Measurement layers on ``views``, per-study persistence in ``session_dir``.

    Signals:
        message(text): for the status bar (a measurement's values, a restore, a problem).
    """

    message = Signal(str)

    def __init__(
        self,
        session: Session,
        views: Iterable[QWidget],
        session_dir: str | os.PathLike | None,
        host: QWidget,
    ) -> None:
        super().__init__(host)
        self.session = session
        self.measurements = MeasurementSet()
        self.session_dir = Path(session_dir) if session_dir is not None else None
        self.layers = [MeasureLayer(view, session, self.measurements) for view in views]
        for layer in self.layers:
            layer.committed.connect(partial(self._on_committed, layer.view))
            layer.text_requested.connect(self.add_text_note)
        self._autosave = QTimer(self)
        self._autosave.setSingleShot(True)
        self._autosave.setInterval(_AUTOSAVE_MS)
        self._autosave.timeout.connect(self.save_now)
        # The name dialog; replaceable in tests (it gets the current name, returns the new one
        # or None when cancelled).
        self.ask_name: Callable[[str], str | None] = self._ask_name
        self.ask_text: Callable[[str], str | None] = self._ask_text
        self._build_actions(host)
        self.measurements.changed.connect(self._on_changed)
        self.measurements.selection_changed.connect(self._on_changed)
        observe(self, session.events.volume, self._on_volume_changed)
        self._on_volume_changed()  # a study may be open already

    # -- actions -------------------------------------------------------------------------------

    def _build_actions(self, host: QWidget) -> None:
        def make(text: str, slot, icon: str, shortcut=None) -> QAction:
            action = QAction(qta.icon(icon), text, self)
            if shortcut is not None:  # every platform binding (Redo: Ctrl+Y and Ctrl+Shift+Z)
                action.setShortcuts(shortcut)
            action.triggered.connect(lambda *_: slot())
            host.addAction(action)  # shortcuts work with the menus hidden
            return action

        sets = self.measurements
        keys = QKeySequence.StandardKey
        self.undo_action = make("&Undo measurement", sets.undo, "mdi6.undo", keys.Undo)
        self.redo_action = make("&Redo measurement", sets.redo, "mdi6.redo", keys.Redo)
        # Delete is the views' key (it also removes the drawn box); the menu only shows it.
        self.delete_action = make("&Delete measurement\tDel", sets.remove_selected, "mdi6.delete")
        self.clear_action = make("&Clear all measurements", sets.clear, "mdi6.delete-sweep")
        self.name_action = make("&Name measurement…", self.name_selected, "mdi6.tag-outline")

    def add_menu(self, bar: QMenuBar, tool_actions: Iterable[QAction]) -> QMenu:
        """A "Measure" menu (the tools, then undo/redo/delete/clear) before the last menu."""
        menu = QMenu("&Measure", bar)
        menu.addActions(list(tool_actions))
        menu.addSeparator()
        menu.addActions([self.undo_action, self.redo_action])
        menu.addSeparator()
        menu.addActions([self.name_action, self.delete_action, self.clear_action])
        if bar.actions():
            bar.insertMenu(bar.actions()[-1], menu)
        else:
            bar.addMenu(menu)
        return menu

    def cancel(self) -> None:
        """Drop any measurement being drawn (Esc)."""
        for layer in self.layers:
            layer.cancel()

    def name_selected(self) -> None:
        """Ask for a name for the selected measurement ("liver span"); shown above its values
        and written into the exports (one undo step)."""
        sets = self.measurements
        if sets.selected is None:
            return
        index, current = sets.selected, sets.items[sets.selected]
        name = self.ask_name(current.label)
        if name is not None and name.strip() != current.label:
            sets.replace(index, replace(current, label=name.strip()))

    def add_text_note(self, note) -> None:
        """Ask for the text of a note placed with the text tool (an empty text adds nothing),
        or the new text of note ``note`` (an index: one undo step)."""
        index = note if isinstance(note, int) else None
        if index is not None:
            note = self.measurements.items[index]
        text = self.ask_text(note.label)
        if text is None or not text.strip() or text.strip() == note.label:
            return
        if index is None:
            self.measurements.add(replace(note, label=text.strip()))
        else:
            self.measurements.replace(index, replace(note, label=text.strip()))

    def _ask_name(self, current: str) -> str | None:
        host = self.parent()
        text, ok = QInputDialog.getText(host, "Name measurement", "Name:", text=current)
        return text if ok else None

    def _ask_text(self, current: str) -> str | None:
        text, ok = QInputDialog.getText(self.parent(), "Text note", "Text:", text=current)
        return text if ok else None

    def _on_changed(self, *_: object) -> None:
        sets = self.measurements
        self.undo_action.setEnabled(sets.can_undo)
        self.redo_action.setEnabled(sets.can_redo)
        self.delete_action.setEnabled(sets.selected is not None)
        self.name_action.setEnabled(sets.selected is not None)
        self.clear_action.setEnabled(len(sets) > 0)
        if sets.study is not None and self.session_dir is not None:
            self._autosave.start()

    def _on_committed(self, view, index: int) -> None:
        """Say what was measured, over the image ``view`` shows (its slab, if any)."""
        volume = self.session.volume
        if volume is None:
            return
        m = self.measurements.items[index]
        values = measure(m, volume, view.slab)
        text = ", ".join(line for line in values.lines() if line != values.calibration.note)
        if values.length is not None or values.area is not None:
            text += f" — scale: {values.calibration.source}"
        self.message.emit(f"{_NAMES[m.kind]}: {text}")

    # -- persistence ---------------------------------------------------------------------------

    def _on_volume_changed(self, *_: object) -> None:
        self.save_now()
        self.cancel()
        volume = self.session.volume
        if volume is None:
            self.measurements.reset(None)
            return
        self.measurements.reset(volume.identity, self._restore(volume.identity))

    def _restore(self, identity: str) -> list:
        if self.session_dir is None:
            return []
        try:
            items = load_measurements(identity, self.session_dir)
        except (OSError, ValueError) as exc:
            self._set_aside(measurements_path(identity, self.session_dir), exc)
            return []
        if items:
            self.message.emit(f"Restored {len(items)} measurements of this study")
        return items

    def _set_aside(self, path: Path, problem: Exception) -> None:
        try:
            kept = set_aside(path)
        except OSError as exc:
            self.message.emit(f"The saved measurements could not be read nor set aside: {exc}")
            return
        logger.warning("measurements set aside: %s", type(problem).__name__)
        self.message.emit(
            f"The saved measurements could not be restored ({problem}); the file was kept as "
            f"{kept.name}"
        )

    def save_now(self) -> None:
        """Write the measurements to their own study's file now (atomically)."""
        self._autosave.stop()
        study = self.measurements.study
        if study is None or self.session_dir is None:
            return
        try:
            save_measurements(study, self.measurements.items, self.session_dir)
        except (OSError, ValueError) as exc:
            logger.warning("saving measurements failed: %s", type(exc).__name__)
            self.message.emit(f"The measurements could not be saved: {exc}")
