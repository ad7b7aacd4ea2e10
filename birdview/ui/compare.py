"""`ComparePane`: a second series beside the first (a prior, another sequence), linked by
patient position.

The pane has its own `Session` and `SliceView`, so the second series keeps its own window and
slice count. The two cursors are linked through `birdview.core.linking`: scrolling either
series shows, in the other, the slice nearest in patient position along the shared normal (not
the same index), and both views draw the crosshair at the linked point. The header says how
far the matched slice lies from the other series' slice, or that it lies beyond this series.
"""

from __future__ import annotations

import logging
import os

import qtawesome as qta
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from birdview.core.geometry import Plane
from birdview.core.io.catalog import SeriesEntry
from birdview.core.linking import frame_note, linked_cursor, match_slice
from birdview.core.session import Session
from birdview.ui._observe import observe
from birdview.ui.loader import StudyLoader
from birdview.ui.slice_view import SliceView

__all__ = ["ComparePane"]

logger = logging.getLogger(__name__)


class ComparePane(QWidget):
    """The second series of a side-by-side review; hidden until a series is opened in it."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._main = session  # the first series (the main window's session)
        self.session = Session()  # the second series
        self.loader = StudyLoader(self)
        self.view = SliceView(self.session, session.main_plane)
        self.view.show_crosshair = True
        self._linking = False
        self._notes: dict[tuple[int, int], str] = {}  # frame_note reads a header: once a pair
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.link_label = QLabel()
        self.link_label.setTextFormat(Qt.TextFormat.PlainText)
        self.link_label.setContentsMargins(4, 0, 4, 2)
        close = QToolButton()
        close.setIcon(qta.icon("mdi6.close"))
        close.setToolTip("Close the side-by-side series")
        close.setAutoRaise(True)
        close.clicked.connect(self.close_series)
        header = QHBoxLayout()
        header.setContentsMargins(4, 2, 2, 2)
        header.addWidget(self.title, 1)
        header.addWidget(close)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(header)
        layout.addWidget(self.link_label)
        layout.addWidget(self.view, 1)
        self.loader.loaded.connect(self._on_loaded)
        self.loader.scanned.connect(self._on_scanned)
        self.loader.failed.connect(self._on_failed)
        observe(self, session.events.cursor_ijk, self._on_main_cursor)
        observe(self, session.events.volume, self._on_main_cursor)
        observe(self, session.events.main_plane, self._on_main_plane)
        observe(self, session.events.catalog, self._on_main_catalog)
        observe(self, self.session.events.cursor_ijk, self._on_own_cursor)
        self.hide()

    # -- public ------------------------------------------------------------------------------

    def open_entry(self, entry: SeriesEntry) -> None:
        """Load ``entry`` (a series of the main window's catalog) beside the first series."""
        self.title.setText(f"Beside: {entry.description or '(no description)'} — loading…")
        self.link_label.setText("")
        self.show()
        self.loader.load_entry(entry)

    def open_path(self, path: str) -> None:
        """Scan ``path`` (a prior's folder, file or .zip) and load its first series beside the
        first series; the main window's catalog stays as it is."""
        name = os.path.basename(os.path.normpath(path)) or path
        self.title.setText(f"Beside: {name} — loading…")
        self.link_label.setText("")
        self.show()
        self.loader.open_path(path)

    def close_series(self) -> None:
        self.loader.cancel()
        self.session.close_volume()
        self.hide()

    def set_presenter(self, on: bool) -> None:
        self.view.set_presenter(on)

    # -- loading -----------------------------------------------------------------------------

    def _on_loaded(self, volume: object, entry: object, plane: object) -> None:
        self.session.open_volume(volume, entry, plane)
        self.session.set_main_plane(self._main.main_plane)
        self.view.set_plane(self._main.main_plane)
        description = entry.description if isinstance(entry, SeriesEntry) else ""
        self.title.setText(f"Beside: {description or '(no description)'}")
        logger.info("side by side: %s beside %s", volume.short_id, _short(self._main))
        self._on_main_cursor()

    def _on_scanned(self, catalog: object) -> None:
        if not getattr(catalog, "entries", None):
            self.title.setText("Beside: no images found there")

    def _on_failed(self, exc: BaseException) -> None:
        self.title.setText(f"Beside: could not open the series ({exc})")

    # -- linking -----------------------------------------------------------------------------

    def _on_main_plane(self, plane: Plane, *_: object) -> None:
        self.session.set_main_plane(plane)
        self.view.set_plane(plane)
        self._describe_link()

    def _on_main_catalog(self, *_: object) -> None:
        self.close_series()  # another study was opened: its series are not this one's

    def _on_main_cursor(self, *_: object) -> None:
        a, b = self._main.volume, self.session.volume
        if a is None or b is None or self._linking:
            return
        self._linking = True  # the other direction must not round the first cursor again
        try:
            self.session.move_cursor(
                linked_cursor(a, self._main.cursor_ijk, b, self.session.cursor_ijk)
            )
        finally:
            self._linking = False
        self._describe_link()

    def _on_own_cursor(self, *_: object) -> None:
        a, b = self._main.volume, self.session.volume
        if a is None or b is None or self._linking:
            return
        self._linking = True
        try:
            self._main.move_cursor(
                linked_cursor(b, self.session.cursor_ijk, a, self._main.cursor_ijk)
            )
        finally:
            self._linking = False
        self._describe_link()

    def _describe_link(self) -> None:
        """Say how well the shown slice of this series matches the first series' slice."""
        a, b = self._main.volume, self.session.volume
        if a is None or b is None:
            self.link_label.setText("")
            return
        plane = self.view.plane
        match = match_slice(a, plane, self._main.slice_index(plane), b)
        note = self._note(a, b)
        if match is None:
            text = note or f"{plane.value} slices are not parallel: not linked"
        elif not match.inside:
            text = f"Outside this series: nearest slice {abs(match.offset_mm):.1f} mm away"
        else:
            text = f"Linked by position: Δ {match.offset_mm:+.1f} mm"
        self.link_label.setText(f"{text}; {note}" if note and match is not None else text)

    def _note(self, a, b) -> str:
        """What makes positions in the two series not the same anatomy ("" when nothing)."""
        key = (a.token, b.token)
        if key not in self._notes:
            note = frame_note(a, b)
            if _patient(a) and _patient(b) and _patient(a) != _patient(b):
                note = "another patient" + (f"; {note}" if note else "")
            self._notes = {key: note}
        return self._notes[key]


def _short(session: Session) -> str:
    return session.volume.short_id if session.volume is not None else "-"


def _patient(volume) -> str:
    return str(volume.metadata.get("patient_id") or "").strip()
