"""`HelpOverlay`: F1 shows what the mouse and the keys do, over the images.

The mouse part comes from the views' `MouseMap`, the keyboard part from the shortcuts of the
window's actions (the action registry, the docks' toggles, cine, measurements: whatever
carries a shortcut), read each time the overlay opens, so the list cannot go stale. Only the
keys a slice view handles itself (they are no actions) are listed here. F1, Esc or a click
closes it.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QColor, QKeySequence, QPainter
from PySide6.QtWidgets import QLabel, QScrollArea, QVBoxLayout, QWidget

from birdview.core.mouse_map import MouseMap

__all__ = ["VIEW_KEYS", "HelpOverlay", "shortcut_rows"]

# Handled in `SliceView.keyPressEvent`, not by actions.
VIEW_KEYS = (
    ("↑ / ← , ↓ / →", "previous / next slice"),
    ("PgUp / PgDn", "10 slices back / on"),
    ("Home / End", "first / last slice"),
    ("F", "fit the view"),
    ("R", "reset zoom and window"),
    ("Delete", "remove the drawn box or the selected measurement"),
    ("Double-click", "make this view the main one"),
)
_CLOSE_KEYS = (Qt.Key.Key_Escape, Qt.Key.Key_F1)


def shortcut_rows(host: QWidget) -> list[tuple[str, str]]:
    """(keys, what they do) for every action under ``host`` that has a shortcut."""
    rows: dict[str, list[str]] = {}
    for action in host.findChildren(QAction):
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        text = action.text().split("\t")[0].replace("&", "").rstrip("…").strip()
        if keys and text and text not in rows.get(keys, []):
            rows.setdefault(keys, []).append(text)  # two actions on one key: both are shown
    return sorted(
        ((keys, " / ".join(texts)) for keys, texts in rows.items()),
        key=lambda row: (len(row[0]) > 1, row[0]),
    )


def _table(title: str, rows: list[tuple[str, str]]) -> str:
    cells = "".join(
        f"<tr><td style='padding-right:18px'><b>{html.escape(k)}</b></td>"
        f"<td>{html.escape(v)}</td></tr>"
        for k, v in rows
    )
    return f"<h3>{html.escape(title) or '&nbsp;'}</h3><table cellspacing='2'>{cells}</table>"


class HelpOverlay(QWidget):
    """A dark, scrollable sheet over ``host``'s whole window; ``mouse_map`` gives the mouse."""

    def __init__(self, host: QWidget, mouse_map) -> None:
        super().__init__(host)
        self._host = host
        self._mouse_map = mouse_map  # a callable: the map in use now
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setWordWrap(False)
        self.label.setStyleSheet("color: white; background: transparent; font-size: 15px;")
        self.label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        scroll = QScrollArea()
        scroll.setWidget(self.label)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setStyleSheet("background: transparent;")
        scroll.viewport().setAutoFillBackground(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(40, 30, 40, 30)
        layout.addWidget(scroll)
        self.hide()
        host.installEventFilter(self)
        self.action = QAction("&Mouse and keys", host)
        self.action.setShortcut(QKeySequence(Qt.Key.Key_F1))
        self.action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.action.triggered.connect(self.toggle)
        host.addAction(self.action)

    def toggle(self) -> None:
        if self.isVisible():
            self.hide()
        else:
            self.open()

    def open(self) -> None:
        self.label.setText(self.text())
        self.setGeometry(self._host.rect())
        self.show()
        self.raise_()
        self.setFocus(Qt.FocusReason.OtherFocusReason)

    def text(self) -> str:
        mouse_map: MouseMap = self._mouse_map()
        left = _table("Mouse", mouse_map.rows()) + _table("In a view", list(VIEW_KEYS))
        keys = shortcut_rows(self._host)
        half = (len(keys) + 1) // 2  # two columns: the whole list fits a laptop screen
        return (
            "<table><tr><td valign='top' style='padding-right:40px'>"
            f"{left}<p><i>F1, Esc or a click closes this.</i></p></td>"
            f"<td valign='top' style='padding-right:40px'>{_table('Keys', keys[:half])}</td>"
            f"<td valign='top'>{_table('', keys[half:])}</td></tr></table>"
        )

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(10, 12, 16, 240))

    def event(self, event: QEvent) -> bool:
        # Esc and F1 close the sheet before the window's shortcuts (Esc: back to W/L) see them.
        if event.type() == QEvent.Type.ShortcutOverride and event.key() in _CLOSE_KEYS:
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event) -> None:  # noqa: N802
        if event.key() in _CLOSE_KEYS:
            self.hide()
            event.accept()
        else:
            super().keyPressEvent(event)

    def mousePressEvent(self, event) -> None:  # noqa: N802
        self.hide()
        event.accept()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self._host and event.type() == QEvent.Type.Resize and self.isVisible():
            self.setGeometry(self._host.rect())
        return False
