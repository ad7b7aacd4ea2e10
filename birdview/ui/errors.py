"""The one place the viewer reports errors: a status-bar message plus one non-blocking dialog.

Loader failures, unreadable files found by a scan and unexpected exceptions (through the
top-level hook installed by `install_excepthook`) all end here. The dialog says what failed
for which file; it never shows a traceback (that goes to the log).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from types import TracebackType

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox, QStatusBar, QWidget

from birdview.core.errors import LoadCancelled, VolumeReadError
from birdview.core.io.catalog import ReadProblem

__all__ = ["ErrorReporter", "install_excepthook"]

logger = logging.getLogger(__name__)

_MAX_LISTED = 8
_STATUS_TIMEOUT_MS = 10_000


class ErrorReporter(QObject):
    """Shows errors to the user: one dialog (reused while open) and a status-bar message."""

    reported = Signal(str, str)  # title, message

    def __init__(self, parent: QWidget, status_bar: QStatusBar | None = None) -> None:
        super().__init__(parent)
        self._parent = parent
        self._status_bar = status_bar
        self.dialog: QMessageBox | None = None

    def report(self, title: str, message: str, details: str = "") -> None:
        """Show ``title`` (what failed) and ``message`` (for which file, and why)."""
        if self._status_bar is not None:
            self._status_bar.showMessage(f"{title}: {message.splitlines()[0]}", _STATUS_TIMEOUT_MS)
        dialog = self.dialog
        if dialog is None:
            dialog = QMessageBox(self._parent)
            dialog.setIcon(QMessageBox.Icon.Warning)
            dialog.setWindowTitle("BirdView")
            dialog.setStandardButtons(QMessageBox.StandardButton.Ok)
            # Messages carry full paths; a wider box keeps them on a line or two.
            dialog.setStyleSheet("QLabel#qt_msgbox_informativelabel { min-width: 460px; }")
            dialog.finished.connect(self._on_dialog_finished)
            self.dialog = dialog
        dialog.setText(title)
        dialog.setInformativeText(message)
        dialog.setDetailedText(details)
        dialog.open()  # window-modal and non-blocking
        self.reported.emit(title, message)

    def report_exception(self, exc: BaseException, *, action: str = "open the study") -> None:
        """Report a failure of ``action``; `LoadCancelled` only reaches the status bar."""
        if isinstance(exc, LoadCancelled):
            if self._status_bar is not None:
                self._status_bar.showMessage("Loading cancelled", _STATUS_TIMEOUT_MS)
            return
        if isinstance(exc, VolumeReadError):
            logger.warning("unable to %s: %s", action, exc.reason)
            self.report(f"Unable to {action}", str(exc))
            return
        logger.error("unable to %s: %s", action, type(exc).__name__)
        self.report(f"Unable to {action}", f"Unexpected {type(exc).__name__}: {exc}")

    def report_problems(self, problems: Sequence[ReadProblem], *, fatal: bool) -> None:
        """Files a scan could not read: a dialog when nothing could be opened, else a message."""
        if not problems:
            return
        count = len(problems)
        noun = "file" if count == 1 else "files"
        logger.warning("%d %s could not be read", count, noun)
        if not fatal:
            if self._status_bar is not None:
                self._status_bar.showMessage(
                    f"{count} {noun} could not be read (see the series browser)", _STATUS_TIMEOUT_MS
                )
            return
        listed = [p.message for p in problems[:_MAX_LISTED]]
        if count > _MAX_LISTED:
            listed.append(f"... and {count - _MAX_LISTED} more")
        details = "\n".join(f"{p.path}: {p.message}" for p in problems)
        self.report(f"Could not read {count} {noun}", "\n".join(listed), details)

    def _on_dialog_finished(self, _result: int) -> None:
        if self.dialog is not None:
            self.dialog.deleteLater()
            self.dialog = None


def install_excepthook(reporter: ErrorReporter) -> Callable[[], None]:
    """Route uncaught exceptions of the GUI thread to ``reporter``; returns an uninstaller."""
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            previous(exc_type, exc, tb)
            return
        logger.error("uncaught %s", exc_type.__name__, exc_info=(exc_type, exc, tb))
        try:
            reporter.report_exception(exc, action="complete the last action")
        except RuntimeError:  # the reporter's window is already gone
            previous(exc_type, exc, tb)

    sys.excepthook = hook

    def uninstall() -> None:
        if sys.excepthook is hook:
            sys.excepthook = previous

    return uninstall
