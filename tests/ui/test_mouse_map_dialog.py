"""View → Mouse buttons…: the real dialog shows the map in use, refuses a map that cannot work
(the active tool on two gestures, or on none) with the reason, restores the defaults, and an
accepted map is saved in the settings, used by every view at once (a real right drag then
pans instead of zooming) and shown by the F1 sheet."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QDialogButtonBox

from birdview.core.mouse_map import MouseMap
from birdview.core.resources import sample_ct_dir
from birdview.ui.mouse_map_dialog import MouseMapDialog
from birdview.ui.settings import Settings
from tests.ui.helpers import open_and_wait
from tests.ui.test_mouse_keys import drag


def _choose(dialog: MouseMapDialog, button: str, modifier: str, action: str) -> None:
    combo = dialog.combos[(button, modifier)]
    combo.setCurrentIndex(combo.findData(action))


def _ok(dialog: MouseMapDialog):
    return dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)


def test_dialog_refuses_clashes_and_restores_the_defaults(qtbot) -> None:
    dialog = MouseMapDialog(MouseMap.default())
    qtbot.addWidget(dialog)
    assert dialog.mouse_map() == MouseMap.default() and _ok(dialog).isEnabled()
    assert dialog.combos[("right", "")].currentText() == "Zoom"
    assert dialog.combos[("wheel", "")].findData("pan") == -1  # the wheel cannot drag
    _choose(dialog, "right", "alt", "tool")
    assert not _ok(dialog).isEnabled() and dialog.mouse_map() is None
    assert "active tool is on Left drag and Alt+right drag" in dialog.problem.text()
    _choose(dialog, "right", "alt", "none")
    _choose(dialog, "left", "", "window")
    assert not _ok(dialog).isEnabled()
    assert "no gesture uses the active tool" in dialog.problem.text()
    restore = dialog.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
    restore.click()
    assert dialog.mouse_map() == MouseMap.default()
    assert _ok(dialog).isEnabled() and dialog.problem.text() == ""


def test_accepted_map_is_saved_applied_at_once_and_shown_by_f1(make_main_window, qtbot) -> None:
    window = make_main_window()
    open_and_wait(qtbot, window, sample_ct_dir())
    view = window.view_layout.main_view
    registry = window.action_registry
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    assert registry.mouse_map_action in view_menu.actions()
    registry.mouse_map_action.trigger()
    dialog = registry.mouse_map_dialog
    assert dialog.isVisible() and dialog.mouse_map() == Settings().mouse_map()
    _choose(dialog, "right", "", "pan")
    _choose(dialog, "middle", "", "zoom")
    _ok(dialog).click()
    expected = (
        MouseMap.default().with_binding("right", "", "pan").with_binding("middle", "", "zoom")
    )
    assert Settings().mouse_map() == expected
    assert all(v.mouse_map == expected for v in window.view_layout.all_views())
    zoom = view.zoom()
    before = view.image_to_viewport(100, 100)
    centre = view.viewport().rect().center()
    drag(view, centre, centre + QPoint(60, 40), Qt.MouseButton.RightButton)
    after = view.image_to_viewport(100, 100)
    assert view.zoom() == zoom  # no longer a zoom...
    assert (after - before).x() > 40 and (after - before).y() > 25  # ...but a pan
    sheet = window.help_overlay.text()  # F1 reads the views' map
    assert "<b>Right drag</b></td><td>pan</td>" in sheet
    assert "<b>Middle drag</b></td><td>zoom</td>" in sheet
