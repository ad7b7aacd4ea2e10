"""`run`: start the viewer (the CLI's entry into the UI)."""

from __future__ import annotations

import logging
import sys
import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

__all__ = ["APPLICATION_NAME", "ORGANIZATION_NAME", "open_window", "run"]

logger = logging.getLogger(__name__)

ORGANIZATION_NAME = "BirdView"
APPLICATION_NAME = "BirdView"


def run(path: str | None = None, *, single_instance: bool = True) -> int:
    """Show the main window on ``path`` (file, folder or .zip), or on the bundled sample CT
    when none is given, and run the event loop. With ``single_instance``, a BirdView of this
    user that is already running opens ``path`` instead, and this returns 0 at once.

    Returns the application's exit code.
    """
    started = time.perf_counter()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION_NAME)
    app.setApplicationName(APPLICATION_NAME)
    app.setApplicationDisplayName(APPLICATION_NAME)

    from birdview.ui.errors import install_excepthook
    from birdview.ui.instance import InstanceServer, hand_over

    if single_instance and hand_over(path):
        logger.info("handed over to the running BirdView window after %.0f ms", _ms(started))
        return 0
    window = open_window(path)
    if single_instance:
        server = InstanceServer(window)
        server.open_requested.connect(lambda target: _bring_forward(window, target))
        server.listen()
    uninstall = install_excepthook(window.reporter)
    logger.info("main window shown after %.0f ms", _ms(started))
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


def _bring_forward(window, path: str | None) -> None:
    """Open what a later start handed over, and show the window to the user."""
    if path:
        window.open_path(path)
    window.setWindowState(window.windowState() & ~Qt.WindowState.WindowMinimized)
    window.raise_()
    window.activateWindow()


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
