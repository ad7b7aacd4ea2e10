"""`MenuBar`: File, View, Window (presets) and Help menus.

The menus only place the registry's actions (`birdview.ui.actions`); what an action does, its
shortcut and when it is enabled are decided there.
"""

from __future__ import annotations

import qtawesome as qta
from PySide6.QtWidgets import QMenu, QMenuBar, QWidget

from birdview.ui.actions import ActionRegistry

__all__ = ["MenuBar"]


class MenuBar(QMenuBar):
    """The main window's menus."""

    def __init__(self, actions: ActionRegistry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._actions = actions
        self._build_file_menu()
        self._build_view_menu()
        self._build_window_menu()
        self.help_menu = self.addMenu("&Help")
        self.help_menu.addAction(actions.about_action)

    def _build_file_menu(self) -> None:
        actions = self._actions
        menu = self.addMenu("&File")
        self.file_menu = menu
        menu.addActions([actions.open_file_action, actions.open_folder_action])
        self.recent_menu = menu.addMenu(qta.icon("mdi6.history"), "&Recent studies")
        self.recent_menu.aboutToShow.connect(self._on_recent_about_to_show)
        menu.addSeparator()
        self._build_export_menu(menu.addMenu(qta.icon("mdi6.export"), "&Export"))
        menu.addSeparator()
        menu.addAction(actions.quit_action)

    def _build_export_menu(self, menu: QMenu) -> None:
        actions = self._actions
        self.export_menu = menu
        menu.addActions(
            [
                actions.export_png_action,
                actions.export_png_2x_action,
                actions.export_json_action,
                actions.export_sr_action,
            ]
        )
        menu.addSeparator()
        menu.addAction(actions.anonymise_action)

    def _build_view_menu(self) -> None:
        actions = self._actions
        menu = self.addMenu("&View")
        menu.addActions(list(actions.layout_actions.values()))
        menu.addSeparator()
        menu.addActions([actions.fit_action, actions.reset_action, actions.mouse_map_action])
        menu.addSeparator()
        menu.addActions([actions.next_series_action, actions.previous_series_action])
        menu.addSeparator()
        menu.addAction(actions.presenter_action)
        menu.addSeparator()
        menu.addActions(actions.dock_actions)

    def _build_window_menu(self) -> None:
        actions = self._actions
        menu = self.addMenu("&Window")
        menu.addActions(actions.preset_actions)
        menu.addSeparator()
        menu.addActions([actions.auto_window_action, actions.reset_window_action])

    def _on_recent_about_to_show(self) -> None:
        self._actions.fill_recent_menu(self.recent_menu)
