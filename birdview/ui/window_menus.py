"""The main window's actions and the menus it assembles from its features' actions.

`MenuBar` places the registry's own actions (File, View, Window, Help); each feature adds its
actions through its ``add_to_menu``. What is left for the window is built here: the registry's
slots (which window parts each command calls) and the Annotate menu, which gathers actions from
several features. A new feature's menu entry goes in its own ``add_to_menu``, called from
`birdview.ui.main_window` (typed here as QMainWindow: importing MainWindow, even for type
checking, would make an import cycle).
"""

from __future__ import annotations

from PySide6.QtWidgets import QMainWindow, QMenu

from birdview.ui.actions import ActionRegistry, ActionSlots

__all__ = ["add_annotate_menu", "build_actions"]


def build_actions(window: QMainWindow) -> ActionRegistry:
    """The window's action registry, its slots calling the window's parts."""
    slots = ActionSlots(
        open_file=window.open_file_dialog,
        open_folder=window.open_folder_dialog,
        open_path=window.open_path,
        quit=window.close,
        export_png=window.exporter.png,
        export_json=window.exporter.json,
        export_sr=lambda: window.key_images.export_beside(window.exporter.dicom_sr()),
        fit_view=window.view_layout.fit,
        reset_view=window.view_layout.reset,
        step_series=window.series_browser.request_relative,
        set_tool=window.view_layout.set_tool,
        remove_box=lambda: window.assistant.set_user_box(None),
        set_presenter=window.set_presenter,
        set_mouse_map=window.view_layout.set_mouse_map,
    )
    docks = (
        window.series_dock,
        window.labels_dock,
        window.tag_dock,
        window.model_dock,
        window.chat_dock,
    )
    toggles = {dock.objectName(): dock.toggleViewAction() for dock in docks}
    return ActionRegistry(window, window.session, window.settings, slots, toggles)


def add_annotate_menu(window: QMainWindow) -> None:
    """Key images, the conversation's undoable edits and presenter mode's teaching keys."""
    views = window.view_layout.all_views()
    chat = window.chat_panel.conversation
    measuring = window.measure.measurements
    chat.watch_views(views, window.session, lambda: measuring.selected is not None)
    window.key_images.add_to_menus(window.menuBar().export_menu, None)
    bar = window.menuBar()
    menu = QMenu("&Annotate", bar)
    menu.addAction(window.key_images.mark_action)
    menu.addSeparator()
    menu.addActions([chat.clear_action, chat.hide_all_action, chat.delete_box_action])
    menu.addActions([chat.undo_action, chat.redo_action])
    menu.addSeparator()
    menu.addActions([window.presenter_mode.phi_action, *window.presenter_mode.actions])
    bar.insertMenu(bar.actions()[-2], menu)  # before Measure, which stays next to Help
