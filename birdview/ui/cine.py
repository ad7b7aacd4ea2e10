"""`CinePlayer`: plays the slices of the view the user sees, as a loop, at a set frame rate.

A QTimer on the GUI thread steps one slice per beat (in reading order, back to the first after
the last), so playing never blocks: each frame is one ordinary `Session.set_slice`, drawn by
the views like a wheel step. Playing stops when the study changes or nothing is open.
"""

from __future__ import annotations

import logging

import qtawesome as qta
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QSpinBox, QWidget

from birdview.core import geometry
from birdview.core.session import Session
from birdview.ui._observe import observe
from birdview.ui.settings import DEFAULT_CINE_FPS, FPS_RANGE
from birdview.ui.slice_view import SliceView

__all__ = ["FPS_RANGE", "CinePlayer"]

logger = logging.getLogger(__name__)

DEFAULT_FPS = DEFAULT_CINE_FPS


class CinePlayer(QObject):
    """Play/pause (Space) and a frame-rate box for the views of a `ViewLayout`."""

    playing_changed = Signal(bool)

    def __init__(self, host: QWidget, session: Session, layout) -> None:
        super().__init__(host)
        self._session = session
        self._layout = layout  # a ViewLayout: its views() are the ones on screen
        self._last_view: SliceView | None = None
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._on_tick)
        self.play_action = QAction(qta.icon("mdi6.play"), "Play cine", self)
        self.play_action.setCheckable(True)
        self.play_action.setShortcut(QKeySequence(Qt.Key.Key_Space))
        self.play_action.setToolTip("Play or pause the slices of the active view (Space)")
        self.play_action.toggled.connect(self._on_play_toggled)
        host.addAction(self.play_action)  # Space works while the tool bar is hidden
        self.fps_box = QSpinBox()
        self.fps_box.setRange(*FPS_RANGE)
        self.fps_box.setSuffix(" fps")
        self.fps_box.setToolTip("Cine frame rate (frames per second)")
        self.fps_box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.fps_box.valueChanged.connect(self._on_fps_changed)
        self.fps_box.setValue(DEFAULT_FPS)
        self._on_fps_changed(DEFAULT_FPS)
        # Qt drops this connection when the player is deleted.
        QApplication.instance().focusChanged.connect(self._on_focus_changed)
        observe(self, session.events.volume, self._on_volume_changed)

    # -- public ------------------------------------------------------------------------------

    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    @property
    def fps(self) -> int:
        return self.fps_box.value()

    def set_fps(self, fps: int) -> None:
        """Frames per second, clamped to `FPS_RANGE`."""
        self.fps_box.setValue(int(min(max(int(fps), FPS_RANGE[0]), FPS_RANGE[1])))

    def play(self) -> None:
        self.play_action.setChecked(True)

    def pause(self) -> None:
        self.play_action.setChecked(False)

    def active_view(self) -> SliceView:
        """The view the user sees and last touched; the main view otherwise."""
        views = self._layout.views()
        if self._last_view in views and self._last_view.isVisible():
            return self._last_view
        return views[0]

    # -- internals ---------------------------------------------------------------------------

    def _on_play_toggled(self, on: bool) -> None:
        if on and self._session.volume is None:
            self.play_action.setChecked(False)
            return
        if on == self._timer.isActive():
            return
        if on:
            self._timer.start()
        else:
            self._timer.stop()
        self.play_action.setIcon(qta.icon("mdi6.pause" if on else "mdi6.play"))
        self.play_action.setText("Pause cine" if on else "Play cine")
        logger.info("cine %s at %d fps", "playing" if on else "paused", self.fps)
        self.playing_changed.emit(on)

    def _on_fps_changed(self, fps: int) -> None:
        self._timer.setInterval(max(1, round(1000 / fps)))

    def _on_focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        if isinstance(new, SliceView):
            self._last_view = new

    def _on_volume_changed(self, *_: object) -> None:
        self.pause()  # another study: the user did not ask to play it

    def _on_tick(self) -> None:
        volume = self._session.volume
        if volume is None:
            self.pause()
            return
        plane = self.active_view().plane
        count = geometry.slice_count(volume, plane)
        if count <= 1:
            self.pause()
            return
        position = geometry.reading_position(volume, plane, self._session.slice_index(plane))
        following = (position + 1) % count  # loop back to the first slice after the last
        self._session.set_slice(plane, geometry.reading_position(volume, plane, following))
