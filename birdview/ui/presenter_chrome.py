"""`PresenterChrome`: the window around the image in presenter mode.

Entering hides the menus, tool bars, status bar and docks given and goes full screen; leaving
shows each again as it was and restores the window's normal geometry. What else presenter mode
changes (text size, hidden identity, teaching keys) belongs to `birdview.ui.presenter_mode`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from PySide6.QtWidgets import QDockWidget, QMainWindow, QWidget

__all__ = ["PresenterChrome", "docks_to_hide"]


class PresenterChrome:
    """Hides and restores one window's chrome."""

    def __init__(self, window: QMainWindow) -> None:
        self._window = window
        self._before: dict[QWidget, bool] = {}
        self._normal_geometry = window.saveGeometry()

    def enter(self, chrome: Iterable[QWidget]) -> None:
        """Hide ``chrome``, remembering what was shown, and fill the screen."""
        window = self._window
        chrome = tuple(chrome)
        self._before = {widget: widget.isVisible() for widget in chrome}
        self._normal_geometry = window.saveGeometry()
        for widget in chrome:
            widget.hide()
        window.setGeometry(window.screen().geometry())  # also without a window manager
        window.showFullScreen()

    def leave(self) -> None:
        """Show again what `enter` hid, at the window's normal size."""
        for widget, visible in self._before.items():
            widget.setVisible(visible)
        self._window.showNormal()
        self._window.restoreGeometry(self._normal_geometry)


def docks_to_hide(window: QMainWindow, kept: Sequence[QDockWidget]) -> list[QDockWidget]:
    """Every dock of ``window`` but ``kept``: on a projector the image needs the room (and any
    other dock, enlarged, would take it)."""
    return [dock for dock in window.findChildren(QDockWidget) if dock not in kept]
