"""No clipped text: the model panel's last line and the tag panel's device lines are shown
whole in the real main window, at the default window size and at small ones."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QRect, Qt

from birdview.core.resources import sample_ct_dir
from birdview.ui import model_panel
from tests.ui.helpers import open_and_wait

DEVICE_WORDS = ("Manufacturer", "Model", "Station", "Software", "Device", "Institution")


def _label_whole(label) -> tuple[int, int, int]:
    """(height needed at its width, its height, the height of it that is visible)."""
    needed = label.heightForWidth(label.width())
    return needed, label.height(), label.visibleRegion().boundingRect().height()


@pytest.mark.parametrize("size", [(1400, 900), (1200, 800), (1000, 650)])
def test_the_model_panels_last_line_is_not_cut(qtbot, make_main_window, size) -> None:
    window = make_main_window()
    window.resize(*size)
    label = window.model_panel.state_label
    label.setText(model_panel._DEMO + model_panel._HOW_TO)  # the longest texts it shows
    qtbot.wait(100)
    needed, height, visible = _label_whole(label)
    assert height >= needed and visible >= needed, (needed, height, visible)


@pytest.mark.parametrize("width", [480, 320])
def test_the_tag_panels_device_lines_are_whole(qtbot, make_main_window, width) -> None:
    window = make_main_window("1x1")
    open_and_wait(qtbot, window, sample_ct_dir())
    window.tag_dock.show()
    window.resizeDocks([window.tag_dock], [width], Qt.Orientation.Horizontal)
    browser = window.tag_browser
    browser.follow()
    qtbot.wait(100)
    table, proxy = browser.table, browser.proxy
    metrics = table.fontMetrics()
    checked = 0
    for row in range(proxy.rowCount()):
        name = proxy.index(row, 1).data() or ""
        if not any(word in name for word in DEVICE_WORDS):
            continue
        checked += 1
        for column in (1, 3):
            text = proxy.index(row, column).data() or ""
            room = table.columnWidth(column) - 8  # the cell's text margins
            flags = int(Qt.TextFlag.TextWordWrap)
            needed = metrics.boundingRect(QRect(0, 0, room, 10_000), flags, text)
            assert needed.width() <= room and needed.height() <= table.rowHeight(row), (
                f"{name}: {text!r} does not fit its cell at dock width {width}"
            )
    assert checked >= 3, "the sample CT names its scanner"
