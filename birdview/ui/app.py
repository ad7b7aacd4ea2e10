"""`run`: start the viewer (the CLI's entry into the UI)."""

from __future__ import annotations

import logging
import sys
import time

from PySide6.QtWidgets import QApplication

__all__ = ["APPLICATION_NAME", "ORGANIZATION_NAME", "run"]

logger = logging.getLogger(__name__)

ORGANIZATION_NAME = "BirdView"
APPLICATION_NAME = "BirdView"


def run(path: str | None = None) -> int:
    """Show the main window, open ``path`` (file, folder or .zip) if given, run the event loop.

    Returns the application's exit code.
    """
    started = time.perf_counter()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION_NAME)
    app.setApplicationName(APPLICATION_NAME)
    app.setApplicationDisplayName(APPLICATION_NAME)

    from birdview.ui.errors import install_excepthook
    from birdview.ui.main_window import MainWindow

    window = MainWindow()
    uninstall = install_excepthook(window.reporter)
    window.show()
    logger.info("main window shown after %.0f ms", (time.perf_counter() - started) * 1000)
    if path:
        window.open_path(path)
    try:
        return app.exec()
    finally:
        uninstall()
