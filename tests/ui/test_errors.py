"""The one error route: dialog + status bar, and the top-level exception hook."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QMainWindow, QStatusBar

from birdview.core.errors import LoadCancelled, VolumeReadError
from birdview.core.io.catalog import ReadProblem
from birdview.ui.errors import ErrorReporter, install_excepthook


def _reporter(qtbot) -> tuple[QMainWindow, ErrorReporter]:
    window = QMainWindow()
    qtbot.addWidget(window)
    window.setStatusBar(QStatusBar())
    window.show()
    return window, ErrorReporter(window, window.statusBar())


def test_read_error_names_the_file(qtbot) -> None:
    window, reporter = _reporter(qtbot)
    with qtbot.waitSignal(reporter.reported):
        reporter.report_exception(VolumeReadError("/data/x/slice7.dcm", "it is not a DICOM file"))
    assert reporter.dialog.isVisible()
    assert "slice7.dcm" in reporter.dialog.informativeText()
    assert "slice7.dcm" in window.statusBar().currentMessage()
    reporter.report_exception(VolumeReadError("/data/y.dcm", "it is truncated"))
    assert "y.dcm" in reporter.dialog.informativeText()  # one dialog, reused
    reporter.dialog.close()


def test_cancel_is_not_an_error(qtbot) -> None:
    window, reporter = _reporter(qtbot)
    reporter.report_exception(LoadCancelled("loading was cancelled"))
    assert reporter.dialog is None
    assert window.statusBar().currentMessage() == "Loading cancelled"


def test_problem_list(qtbot) -> None:
    window, reporter = _reporter(qtbot)
    problems = [
        ReadProblem(f"/d/f{n}.dcm", f"Unable to read '/d/f{n}.dcm' as bad") for n in range(12)
    ]
    reporter.report_problems(problems, fatal=False)
    assert reporter.dialog is None and "12 files" in window.statusBar().currentMessage()
    reporter.report_problems(problems, fatal=True)
    assert reporter.dialog.text() == "Could not read 12 files"
    assert (
        "f0.dcm" in reporter.dialog.informativeText()
        and "4 more" in reporter.dialog.informativeText()
    )
    assert "f11.dcm" in reporter.dialog.detailedText()
    reporter.dialog.close()


def test_excepthook_routes_to_the_dialog_without_traceback(qtbot) -> None:
    _window, reporter = _reporter(qtbot)
    uninstall = install_excepthook(reporter)
    try:
        try:
            raise ZeroDivisionError("division by zero")
        except ZeroDivisionError:
            sys.excepthook(*sys.exc_info())
    finally:
        uninstall()
    assert sys.excepthook is not None
    text = reporter.dialog.informativeText()
    assert "ZeroDivisionError" in text and "Traceback" not in text
    reporter.dialog.close()
