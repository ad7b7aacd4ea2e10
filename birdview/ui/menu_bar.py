"""`MenuBar`: File, View, Window (presets) and Help menus, and their shortcuts.

Actions only call public methods of the session, the main window and its widgets; the bar
observes the session to enable the CT presets and check the current layout.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import qtawesome as qta
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar, QMessageBox, QWidget

import birdview
from birdview.core.display import PRESETS
from birdview.core.session import Session
from birdview.ui._observe import observe

if TYPE_CHECKING:
    from birdview.ui.main_window import MainWindow

__all__ = ["ABOUT_TEXT", "MenuBar"]

ABOUT_TEXT = (
    f"<h3>BirdView {birdview.__version__}</h3>"
    "<p>A viewer for DICOM, NIfTI and 2D medical images.</p>"
    "<p><b>Research and teaching use — not for clinical decisions.</b> "
    "The model features are not a medical device; their answers can be wrong and must not "
    "be used to diagnose or treat anyone. Every export carries this notice.</p>"
)


class MenuBar(QMenuBar):
    """The main window's menus."""

    def __init__(self, window: MainWindow, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._window = window
        self._session = session
        self._build_file_menu()
        self._build_view_menu()
        self._build_window_menu()
        help_menu = self.addMenu("&Help")
        self.about_action = help_menu.addAction(
            qta.icon("mdi6.information-outline"), "&About BirdView"
        )
        self.about_action.triggered.connect(self._on_about_triggered)
        observe(self, session.events.volume, self._on_volume_changed)
        observe(self, session.events.layout, self._on_layout_changed)
        self._on_volume_changed()
        self._on_layout_changed()

    # -- building ----------------------------------------------------------------------------

    def _action(
        self,
        menu: QMenu,
        text: str,
        slot,
        shortcut: str | QKeySequence | None = None,
        icon: str | None = None,
    ) -> QAction:
        action = menu.addAction(text)
        if icon:
            action.setIcon(qta.icon(icon))
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda *_: slot())
        self._window.addAction(action)  # shortcuts work even while the menu bar is hidden
        return action

    def _build_file_menu(self) -> None:
        window = self._window
        menu = self.addMenu("&File")
        self.open_file_action = self._action(
            menu,
            "&Open file…",
            window.open_file_dialog,
            QKeySequence.StandardKey.Open,
            "mdi6.file-image-outline",
        )
        self.open_folder_action = self._action(
            menu,
            "Open &folder…",
            window.open_folder_dialog,
            "Ctrl+Shift+O",
            "mdi6.folder-open-outline",
        )
        self.recent_menu = menu.addMenu(qta.icon("mdi6.history"), "&Recent studies")
        self.recent_menu.aboutToShow.connect(self._on_recent_about_to_show)
        menu.addSeparator()
        self._build_export_menu(menu.addMenu(qta.icon("mdi6.export"), "&Export"))
        menu.addSeparator()
        self.quit_action = self._action(
            menu, "&Quit", window.close, QKeySequence.StandardKey.Quit, "mdi6.exit-to-app"
        )

    def _build_export_menu(self, menu: QMenu) -> None:
        exporter = self._window.exporter
        self.export_png_action = self._action(
            menu, "Annotated &PNG of this view…", exporter.png, "Ctrl+E", "mdi6.image-move"
        )
        self.export_json_action = self._action(
            menu, "Findings as &JSON…", exporter.json, None, "mdi6.code-json"
        )
        self.export_sr_action = self._action(
            menu, "DICOM &SR measurement report…", exporter.dicom_sr, None, "mdi6.file-document"
        )
        menu.addSeparator()
        settings = self._window.settings
        self.anonymise_action = menu.addAction("&Anonymise exports (no patient name or ID)")
        self.anonymise_action.setCheckable(True)
        self.anonymise_action.setChecked(settings.anonymise_exports())
        self.anonymise_action.toggled.connect(settings.set_anonymise_exports)

    def _build_view_menu(self) -> None:
        window, session = self._window, self._session
        menu = self.addMenu("&View")
        group = QActionGroup(self)
        self.layout_actions: dict[str, QAction] = {}
        for layout, text, icon, key in (
            ("1x1", "&Single view (1×1)", "mdi6.square-outline", "Ctrl+1"),
            ("1+3", "&Linked views (1+3)", "mdi6.view-dashboard-outline", "Ctrl+3"),
        ):
            action = self._action(
                menu, text, lambda layout=layout: session.set_layout(layout), key, icon
            )
            action.setCheckable(True)
            group.addAction(action)
            self.layout_actions[layout] = action
        menu.addSeparator()
        # F and R are handled by the focused view; the menu applies to every view.
        self.fit_action = self._action(
            menu, "&Fit to window\tF", window.view_layout.fit, None, "mdi6.fit-to-screen-outline"
        )
        self.reset_action = self._action(
            menu, "&Reset zoom and window\tR", window.view_layout.reset, None, "mdi6.restore"
        )
        menu.addSeparator()
        self.next_series_action = self._action(
            menu, "&Next series", lambda: window.series_browser.request_relative(1), "Ctrl+Down"
        )
        self.previous_series_action = self._action(
            menu, "&Previous series", lambda: window.series_browser.request_relative(-1), "Ctrl+Up"
        )
        menu.addSeparator()
        menu.addAction(window.tool_bar.presenter_action)
        menu.addSeparator()
        for dock in (window.series_dock, window.tag_dock, window.model_dock, window.chat_dock):
            menu.addAction(dock.toggleViewAction())
        window.tag_dock.toggleViewAction().setShortcut(QKeySequence("Ctrl+T"))
        window.tag_dock.toggleViewAction().setIcon(qta.icon("mdi6.tag-text-outline"))

    def _build_window_menu(self) -> None:
        session = self._session
        menu = self.addMenu("&Window")
        self.preset_actions: list[QAction] = []
        for number, (name, window) in enumerate(PRESETS.items(), start=1):
            text = f"{name}  (W {window.width:.0f} / L {window.center:.0f})"
            action = self._action(menu, text, lambda n=number: session.apply_preset(n), str(number))
            self.preset_actions.append(action)
        menu.addSeparator()
        self.auto_window_action = self._action(
            menu, "&Auto (percentiles)", session.apply_auto_window, "A", "mdi6.contrast-box"
        )
        self.reset_window_action = self._action(
            menu, "Reset to &header window", session.reset_window, "Shift+R"
        )

    # -- session -> menus --------------------------------------------------------------------

    def _on_volume_changed(self, *_: object) -> None:
        volume = self._session.volume
        is_ct = volume is not None and volume.modality.upper() == "CT"
        for action in self.preset_actions:
            action.setEnabled(is_ct)
        for action in (self.auto_window_action, self.reset_window_action):
            action.setEnabled(volume is not None)

    def _on_layout_changed(self, *_: object) -> None:
        self.layout_actions[self._session.layout].setChecked(True)

    def _on_recent_about_to_show(self) -> None:
        self.recent_menu.clear()
        paths = self._window.settings.recent_paths()
        for path in paths:
            label = os.path.basename(os.path.normpath(path)) or path
            action = self.recent_menu.addAction(label)
            action.setToolTip(path)
            action.triggered.connect(lambda *_, p=path: self._window.open_path(p))
        if not paths:
            self.recent_menu.addAction("(none)").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", self._window.settings.clear_recent_paths)

    def _on_about_triggered(self) -> None:
        QMessageBox.about(self._window, "About BirdView", ABOUT_TEXT)
