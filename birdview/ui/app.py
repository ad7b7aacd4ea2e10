"""`run`: start the viewer (the CLI's entry into the UI)."""

from __future__ import annotations

import logging
import sys
import time

from PySide6.QtWidgets import QApplication

__all__ = ["APPLICATION_NAME", "ORGANIZATION_NAME", "open_window", "run"]

logger = logging.getLogger(__name__)

ORGANIZATION_NAME = "BirdView"
APPLICATION_NAME = "BirdView"


def run(path: str | None = None) -> int:
    """Show the main window on ``path`` (file, folder or .zip), or on the bundled sample CT
    when none is given, and run the event loop.

    Returns the application's exit code.
    """
    started = time.perf_counter()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION_NAME)
    app.setApplicationName(APPLICATION_NAME)
    app.setApplicationDisplayName(APPLICATION_NAME)

    from birdview.ui.errors import install_excepthook

    window = open_window(path)
    uninstall = install_excepthook(window.reporter)
    logger.info("main window shown after %.0f ms", (time.perf_counter() - started) * 1000)
    try:
        return app.exec()
    finally:
        uninstall()


def open_window(path: str | None = None, **window_options):
    """A shown `MainWindow` opening ``path``, or the bundled sample CT without one; the
    configured checkpoint loads, or the bundled demo model while none is configured."""
    from birdview.core.resources import demo_model_dir, sample_ct_dir
    from birdview.ui.main_window import MainWindow

    demo = demo_model_dir()
    window = MainWindow(demo_model=str(demo) if demo else None, **window_options)
    window.show()
    if not path:
        sample = sample_ct_dir()
        path = str(sample) if sample else None
    if path:
        window.open_path(path)
    return window
