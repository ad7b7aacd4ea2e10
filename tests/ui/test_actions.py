"""The action registry: one QAction per command, placed by the menus and the tool bar."""

from __future__ import annotations

from dataclasses import fields

import pytest
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMenu, QToolBar, QWidget

from birdview.core.session import Session
from birdview.ui.actions import ActionRegistry, ActionSlots
from birdview.ui.menu_bar import MenuBar
from birdview.ui.settings import Settings
from birdview.ui.tool_bar import ToolBar
from tests.ui.helpers import load_nifti_canonical

# The shortcuts users know; a change here is a change they will notice.
SHORTCUTS = {
    "open_folder_action": "Ctrl+Shift+O",
    "export_png_action": "Ctrl+E",
    "next_series_action": "Ctrl+Down",
    "previous_series_action": "Ctrl+Up",
    "presenter_action": "F11",
    "auto_window_action": "A",
    "reset_window_action": "Shift+R",
    "window_tool_action": "W",
    "box_tool_action": "B",
}


class Calls:
    """Records what the actions trigger, as (slot name, arguments)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, tuple]] = []

    def slot(self, name: str):
        return lambda *args: self.log.append((name, args))

    def slots(self) -> ActionSlots:
        return ActionSlots(**{f.name: self.slot(f.name) for f in fields(ActionSlots)})


@pytest.fixture
def built(qtbot):
    host = QWidget()
    qtbot.addWidget(host)
    docks = {name: QDockWidget(name, host) for name in ("series_dock", "tag_dock")}
    for name, dock in docks.items():
        dock.setObjectName(name)
    session, calls = Session(), Calls()
    toggles = {name: dock.toggleViewAction() for name, dock in docks.items()}
    actions = ActionRegistry(host, session, Settings(), calls.slots(), toggles)
    return host, session, calls, actions


def _menu_actions(menu: QMenu) -> list[QAction]:
    found = []
    for action in menu.actions():
        found.append(action)
        if action.menu() is not None:
            found.extend(_menu_actions(action.menu()))
    return found


def test_menus_and_tool_bar_place_the_registrys_own_actions(built):
    host, _, _, actions = built
    registry = set(actions.findChildren(QAction)) | set(actions.dock_actions)
    bar, tools = MenuBar(actions, host), ToolBar(actions, host)
    placed = [a for top in bar.actions() for a in _menu_actions(top.menu())]
    commands = [a for a in placed + tools.actions() if not a.isSeparator() and not a.menu()]
    assert commands and all(a in registry for a in commands)
    assert actions.export_png_action in tools.actions() and actions.export_png_action in placed
    assert actions.presenter_action in tools.actions() and actions.presenter_action in placed
    assert isinstance(tools, QToolBar) and tools.objectName() == "tool_bar"


def test_shortcuts_live_on_the_host_so_they_work_with_hidden_bars(built):
    host, _, _, actions = built
    for name, key in SHORTCUTS.items():
        action = getattr(actions, name)
        assert action.shortcut() == QKeySequence(key), name
        assert action in host.actions(), name
    assert actions.open_file_action.shortcut() == QKeySequence(QKeySequence.StandardKey.Open)
    assert [a.shortcut().toString() for a in actions.layout_actions.values()] == [
        "Ctrl+1",
        "Ctrl+3",
    ]
    assert [a.shortcut().toString() for a in actions.preset_actions] == [
        str(n) for n in range(1, len(actions.preset_actions) + 1)
    ]
    tags = actions.dock_actions[1]
    assert tags.shortcut() == QKeySequence("Ctrl+T") and not tags.icon().isNull()


def test_triggering_calls_the_slots(built):
    _, _, calls, actions = built
    actions.box_tool_action.trigger()
    actions.window_tool_action.trigger()
    actions.next_series_action.trigger()
    actions.previous_series_action.trigger()
    actions.delete_box_action.trigger()
    actions.presenter_action.trigger()
    actions.presenter_action.trigger()
    actions.export_sr_action.trigger()
    assert calls.log == [
        ("set_tool", ("box",)),
        ("set_tool", ("window",)),
        ("step_series", (1,)),
        ("step_series", (-1,)),
        ("remove_box", ()),
        ("set_presenter", (True,)),
        ("set_presenter", (False,)),
        ("export_sr", ()),
    ]
    assert actions.window_tool_action.isChecked() and not actions.box_tool_action.isChecked()


def test_session_enables_presets_and_checks_the_layout(built):
    _, session, _, actions = built
    assert not any(a.isEnabled() for a in actions.preset_actions)
    assert not actions.auto_window_action.isEnabled()
    session.open_volume(*load_nifti_canonical())
    assert all(a.isEnabled() for a in actions.preset_actions)
    assert actions.reset_window_action.isEnabled()
    actions.preset_actions[2].trigger()
    assert session.window.width == 1500
    session.set_layout("1+3")
    assert actions.layout_actions["1+3"].isChecked()
    actions.layout_actions["1x1"].trigger()
    assert session.layout == "1x1"


def test_recent_menu_lists_paths_and_opens_them(built, tmp_path):
    host, _, calls, actions = built
    menu = QMenu(host)
    actions.fill_recent_menu(menu)
    assert [a.text() for a in menu.actions()] == ["(none)"]
    Settings().add_recent_path(str(tmp_path / "study"))
    actions.fill_recent_menu(menu)
    assert [a.text() for a in menu.actions() if not a.isSeparator()] == ["study", "Clear list"]
    menu.actions()[0].trigger()
    assert calls.log == [("open_path", (str(tmp_path / "study"),))]


def test_anonymise_is_a_remembered_toggle(built):
    _, _, _, actions = built
    assert not actions.anonymise_action.isChecked()
    actions.anonymise_action.setChecked(True)
    assert Settings().anonymise_exports() is True
