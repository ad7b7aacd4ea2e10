"""Helpers for driving real widgets in UI tests."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication, QWidget

from tests.conftest import SHARED_DATA

CT_DICOM = SHARED_DATA / "totalseg" / "example_ct_dicom"
CT_NIFTI = SHARED_DATA / "totalseg" / "example_ct_sm.nii.gz"
FUNDUS_RGB = SHARED_DATA / "biomedparse_demo" / "demo" / "23_fundus_retinal.png"


def load_nifti_canonical(path: Path = CT_NIFTI):
    """(canonical volume, entry, acquisition plane) of a NIfTI file, read in this thread."""
    from birdview.core import geometry
    from birdview.core.io.nifti import load_nifti, scan_nifti

    entry = scan_nifti(str(path))
    raw = load_nifti(entry)
    return geometry.to_canonical(raw), entry, geometry.acquisition_plane(raw)


def open_and_wait(qtbot, window, path, timeout_ms: int = 20000) -> None:
    """Open ``path`` in ``window`` and wait until its load has ended (loaded or failed)."""
    with qtbot.waitSignal(
        window.loader.busy_changed, timeout=timeout_ms, check_params_cb=lambda busy: busy is False
    ):
        window.open_path(str(path))


def mouse(
    widget: QWidget,
    kind: QEvent.Type,
    pos: QPoint,
    button: Qt.MouseButton,
    buttons: Qt.MouseButton | None = None,
) -> None:
    """Send one mouse event with an explicit button state (QTest's mouseMove has none)."""
    held = button if buttons is None else buttons
    local = QPointF(pos)
    event = QMouseEvent(
        kind, local, QPointF(widget.mapToGlobal(pos)), button, held, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(widget, event)


def drag(
    widget: QWidget, start: QPoint, end: QPoint, button: Qt.MouseButton, steps: int = 5
) -> None:
    """Press at ``start``, move in ``steps`` to ``end`` with the button held, release."""
    mouse(widget, QEvent.Type.MouseButtonPress, start, button)
    for n in range(1, steps + 1):
        pos = start + (end - start) * (n / steps)
        mouse(widget, QEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton, button)
    mouse(widget, QEvent.Type.MouseButtonRelease, end, button, Qt.MouseButton.NoButton)


def click(widget: QWidget, pos: QPoint) -> None:
    mouse(widget, QEvent.Type.MouseButtonPress, pos, Qt.MouseButton.LeftButton)
    mouse(
        widget,
        QEvent.Type.MouseButtonRelease,
        pos,
        Qt.MouseButton.LeftButton,
        Qt.MouseButton.NoButton,
    )


def wheel(
    widget: QWidget,
    pos: QPoint,
    delta_y: int,
    modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier,
) -> None:
    event = QWheelEvent(
        QPointF(pos),
        QPointF(widget.mapToGlobal(pos)),
        QPoint(0, 0),
        QPoint(0, delta_y),
        Qt.MouseButton.NoButton,
        modifiers,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)
