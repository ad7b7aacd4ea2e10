"""The window the segmentation tests drive: settings naming a segmentation checkpoint, a study
open, and the bundled demo model loaded in fp32 in the real worker."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QSettings

from birdview.ui.settings import Settings
from tests.conftest import REPO

DEMO = REPO / "resources" / "demo_model"


def wait_for(condition, timeout_s: float = 60.0) -> None:
    from PySide6.QtWidgets import QApplication

    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for the window")
        QApplication.processEvents()
        time.sleep(0.005)


def open_segment_window(folder: Path, segmenter_dir: Path, study: Path | str):
    """A shown 1400 × 900 MainWindow keeping its settings and sessions in ``folder``, with
    ``study`` open and the demo model ready; the caller closes it."""
    from birdview.ui.main_window import MainWindow

    settings = Settings(QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat))
    settings.set_segmenter_dir(str(segmenter_dir))
    window = MainWindow(settings, session_dir=str(folder / "sessions"), autoload_model=False)
    window.resize(1400, 900)
    window.show()
    window.open_path(str(study))
    wait_for(lambda: window.session.volume is not None, 60)
    window.model_panel.model_edit.setText(str(DEMO))
    window.model_panel.precision_box.setCurrentText("fp32")
    window.model_panel.load()
    wait_for(lambda: window.assistant.model.state in ("ready", "error"), 120)
    assert window.assistant.model.ready, window.assistant.model.message
    return window
