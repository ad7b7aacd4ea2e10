"""`PresenterMode`: what presenter mode adds for teaching on a projector.

- Every control and label enlarged, not only the fonts: a style sheet for the window (text,
  buttons, spin boxes, combo boxes, check boxes, dock title bars, list and table rows, scroll
  bars, the status bar) and twice the icon size in tool bars and lists.
- Patient identity off the screen: it sets `Session.phi_hidden`, which the overlays, the tag
  and series browsers and the PACS browser observe (the user's own choice is given back when
  presenter mode ends).
- A laser pointer (P, on when presenter mode starts) and a spotlight (S) on the main view.
- The latest answer's boxes shown one at a time: N shows the next one (it grows into place),
  Shift+N shows them all again.
"""

from __future__ import annotations

import qtawesome as qta
from PySide6.QtCore import QObject, QSize
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QAbstractItemView, QApplication, QMainWindow, QToolBar

from birdview.core.assistant import Assistant
from birdview.core.conversation_edits import ConversationEdits
from birdview.core.session import Session
from birdview.ui._observe import observe
from birdview.ui.presenter_pointer import PointerOverlay

__all__ = ["SCALE", "PresenterMode", "presenter_style_sheet"]

SCALE = 1.7  # how much larger everything is


def presenter_style_sheet(base_pt: float, scale: float = SCALE) -> str:
    """The window's style sheet in presenter mode (sizes from the normal font size)."""
    pt = base_pt * scale
    pad = round(4 * scale)
    box = round(30 * scale)
    return f"""
* {{ font-size: {pt:.1f}pt; }}
QPushButton, QToolButton {{ padding: {pad}px {2 * pad}px; min-height: {box}px; }}
QAbstractSpinBox, QComboBox, QLineEdit {{ min-height: {box}px; padding: {pad}px; }}
QCheckBox::indicator, QRadioButton::indicator {{ width: {box // 2}px; height: {box // 2}px; }}
QDockWidget::title {{ padding: {2 * pad}px; }}
QAbstractItemView::item {{ padding: {pad}px; }}
QHeaderView::section {{ padding: {pad}px; }}
QStatusBar, QStatusBar QLabel {{ font-size: {pt:.1f}pt; min-height: {box}px; }}
QScrollBar:vertical {{ width: {box // 2}px; }}
QScrollBar:horizontal {{ height: {box // 2}px; }}
QSlider {{ min-height: {box}px; }}
"""


class PresenterMode(QObject):
    """Presenter mode's additions to ``window``; `set_on` switches them."""

    def __init__(
        self,
        window: QMainWindow,
        session: Session,
        assistant: Assistant,
        edits: ConversationEdits,
        main_view,
    ) -> None:
        super().__init__(window)
        self.window, self.session, self.assistant, self.edits = window, session, assistant, edits
        self.main_view = main_view
        self.on = False
        self.pointer = PointerOverlay(main_view)
        self._saved: dict = {}
        self._phi_before = False

        def make(text: str, key: str, icon: str, slot, checkable: bool = False) -> QAction:
            action = QAction(qta.icon(icon), text, self)
            action.setShortcut(QKeySequence(key))
            action.setCheckable(checkable)
            action.setEnabled(False)  # presenter mode only
            action.triggered.connect(lambda *_: slot())
            window.addAction(action)
            return action

        self.laser_action = make("Laser pointer", "P", "mdi6.circle-medium", self._modes, True)
        self.spotlight_action = make("Spotlight", "S", "mdi6.spotlight-beam", self._modes, True)
        self.next_box_action = make("Show the next box", "N", "mdi6.page-next", self.next_box)
        self.all_boxes_action = make(
            "Show all boxes", "Shift+N", "mdi6.checkbox-multiple-blank", edits.stop_reveal
        )
        self.phi_action = QAction(qta.icon("mdi6.incognito"), "Hide patient identity", self)
        self.phi_action.setCheckable(True)
        self.phi_action.toggled.connect(self._on_phi_toggled)
        observe(self, session.events.phi_hidden, self._on_phi_changed)

    @property
    def actions(self) -> list[QAction]:
        return [
            self.laser_action,
            self.spotlight_action,
            self.next_box_action,
            self.all_boxes_action,
        ]

    def set_on(self, on: bool) -> None:
        on = bool(on)
        if on == self.on:
            return
        self.on = on
        if on:
            self._phi_before = self.session.phi_hidden
            self.session.set_phi_hidden(True)
            self._enlarge()
        else:
            self._restore()
            self.session.set_phi_hidden(self._phi_before)
            self.edits.stop_reveal()
        for action in self.actions:
            action.setEnabled(on)
        self.laser_action.setChecked(on)
        self.spotlight_action.setChecked(False)
        self._modes()

    def next_box(self) -> int | None:
        """Show the next box of the latest answer, on its slice, growing into place."""
        shown = self.edits.reveal_next()
        reveal = self.assistant.visibility.reveal
        if not shown or reveal is None:
            return shown
        turn = self.assistant.turn(reveal[0])
        box = turn.boxes[shown - 1]
        if self.session.volume is not None and (
            box.plane is not self.main_view.plane
            or self.session.slice_index(box.plane) != box.slice_index
        ):
            self.session.set_main_plane(box.plane)
            self.session.set_slice(box.plane, box.slice_index)
        colour = next(
            (p.colour for p in self.assistant.placed_boxes() if p.turn_id == turn.turn_id
             and p.index == shown - 1),
            0,
        )  # fmt: skip
        self.pointer.animate_box(box.edges_px, colour)
        return shown

    # -- internals -----------------------------------------------------------------------------

    def _modes(self) -> None:
        self.pointer.set_modes(
            laser=self.on and self.laser_action.isChecked(),
            spotlight=self.on and self.spotlight_action.isChecked(),
        )

    def _on_phi_changed(self, *_: object) -> None:
        self.phi_action.setChecked(self.session.phi_hidden)

    def _on_phi_toggled(self, hidden: bool) -> None:
        if self.on and not hidden:  # presenter mode never shows identity
            self.phi_action.setChecked(True)
            return
        self.session.set_phi_hidden(hidden)

    def _enlarge(self) -> None:
        window = self.window
        base = QApplication.font().pointSizeF()
        if base <= 0:
            base = 10.0
        self._saved = {
            "sheet": window.styleSheet(),
            "bars": {bar: bar.iconSize() for bar in window.findChildren(QToolBar)},
            "views": {v: v.iconSize() for v in window.findChildren(QAbstractItemView)},
        }
        window.setStyleSheet(self._saved["sheet"] + presenter_style_sheet(base))
        for widget, size in (*self._saved["bars"].items(), *self._saved["views"].items()):
            side = max(size.width(), size.height(), 16)
            widget.setIconSize(QSize(round(side * 2), round(side * 2)))

    def _restore(self) -> None:
        saved = self._saved
        if not saved:
            return
        self.window.setStyleSheet(saved["sheet"])
        for widget, size in (*saved["bars"].items(), *saved["views"].items()):
            widget.setIconSize(size)
        self._saved = {}
