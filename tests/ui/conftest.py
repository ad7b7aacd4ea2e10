"""UI test setup: offscreen Qt (unless --headed), private QSettings, HOME and session folder,
a window factory."""

from __future__ import annotations

import os
import sys

import pytest

from tests.ui.model_fixture import taught_model  # noqa: F401 - a session fixture for UI tests

# Offscreen unless asked to show windows: `pytest tests/ui --headed` or BIRDVIEW_HEADED=1.
if "--headed" not in sys.argv and os.environ.get("BIRDVIEW_HEADED") != "1":
    os.environ["QT_QPA_PLATFORM"] = "offscreen"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--headed", action="store_true", help="show UI test windows on screen")


@pytest.fixture(autouse=True)
def _fresh_settings(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """Every test gets empty settings in a temporary INI file, and a temporary HOME."""
    from PySide6.QtCore import QCoreApplication, QSettings

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("BIRDVIEW_SESSION_DIR", str(tmp_path / "sessions"))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, str(tmp_path / "settings"))
    QCoreApplication.setOrganizationName("BirdViewTests")
    QCoreApplication.setApplicationName("BirdViewTests")
    yield


@pytest.fixture
def make_main_window(qtbot):
    """Factory for shown `MainWindow`s; waits for their loads and closes them afterwards."""
    from birdview.ui.main_window import MainWindow

    windows = []

    def factory(layout: str | None = None) -> MainWindow:
        window = MainWindow()
        qtbot.addWidget(window)
        if layout is not None:
            window.session.set_layout(layout)
        window.resize(1200, 800)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield factory
    for window in windows:
        window.loader.shutdown()
        if window.reporter.dialog is not None:
            window.reporter.dialog.close()
