"""File → Export → Annotated PNG at 2× in the real window on the sample CT: twice the pixels
of the plain export, and the labels shown in the viewer are drawn with a legend."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtGui import QKeySequence

from birdview.core.resources import sample_ct_dir
from tests.ui.helpers import open_and_wait


def test_the_2x_action_exports_twice_the_pixels_with_the_labels(
    qtbot, make_main_window, tmp_path
) -> None:
    window = make_main_window("1x1")
    open_and_wait(qtbot, window, sample_ct_dir())
    names = iter(["one.png", "two.png", "labels.png"])
    window.exporter.ask_path = lambda *args: str(tmp_path / next(names))
    actions = window.action_registry
    assert actions.export_png_2x_action.shortcut() == QKeySequence("Ctrl+Shift+E")
    actions.export_png_action.trigger()
    actions.export_png_2x_action.trigger()
    one = Image.open(tmp_path / "one.png")
    two = Image.open(tmp_path / "two.png")
    assert two.size == (2 * one.size[0], 2 * one.size[1])
    with qtbot.waitSignal(window.labels.finished, timeout=20000):
        window.labels.open_bundled()
    actions.export_png_2x_action.trigger()
    shown = np.asarray(Image.open(tmp_path / "labels.png").convert("RGB"))
    plain = np.asarray(two.convert("RGB"))
    swatches = [
        item.name
        for item in window.labels.overlay.label_map.classes
        if np.all(shown == item.colour, axis=2).sum() >= 50
        and not np.all(plain == item.colour, axis=2).any()
    ]
    assert swatches, "no label of the overlay in the exported legend"
