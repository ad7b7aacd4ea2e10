"""`ActionRegistry`: every command of the main window as one QAction, built in one place.

The menu bar and the tool bar only place these actions; text, icon, shortcut, tool tip,
checkable state and the rule that enables them live here. The registry is given the session,
the settings and the plain callables it triggers (`ActionSlots`), so it needs no window class
and the bars need nothing but the registry.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import qtawesome as qta
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QMessageBox, QWidget

import birdview
from birdview.core.display import PRESETS
from birdview.core.mouse_map import MouseMap
from birdview.core.session import Session
from birdview.ui._observe import observe
from birdview.ui.mouse_map_dialog import MouseMapDialog
from birdview.ui.settings import Settings

__all__ = ["ABOUT_TEXT", "ActionRegistry", "ActionSlots"]

ABOUT_TEXT = (
    f"<h3>BirdView {birdview.__version__}</h3>"
    "<p>A viewer for DICOM, NIfTI and 2D medical images.</p>"
    "<p><b>Research and teaching use — not for clinical decisions.</b> "
    "The model features are not a medical device; their answers can be wrong and must not "
    "be used to diagnose or treat anyone. Every export carries this notice.</p>"
)

_LAYOUTS = (
    ("1x1", "&Single view (1×1)", "mdi6.square-outline", "Ctrl+1"),
    ("1+3", "&Linked views (1+3)", "mdi6.view-dashboard-outline", "Ctrl+3"),
)
_TOOLS = (
    ("window", "Window/level", "mdi6.contrast-circle", "W", "Left drag sets window and level (W)"),
    ("box", "Box", "mdi6.selection-drag", "B", "Left drag draws a box to ask about (B)"),
    ("ruler", "Ruler", "mdi6.ruler", "L", "Left drag measures a length in mm (L)"),
    ("angle", "Angle", "mdi6.angle-acute", "Shift+A", "Draw one arm, click the other (Shift+A)"),
    ("ellipse", "Ellipse ROI", "mdi6.ellipse-outline", "E", "Mean/SD/min/max in an ellipse (E)"),
    ("rectangle", "Rectangle ROI", "mdi6.rectangle-outline", "Shift+E", "ROI statistics (Shift+E)"),
    (
        "arrow",
        "Arrow",
        "mdi6.arrow-top-right-thin",
        "Shift+L",
        "Left drag draws an arrow to its tip (Shift+L)",
    ),
    ("text", "Text note", "mdi6.format-text", "T", "Click where a text note goes (T)"),
    ("brush", "Mask brush", "mdi6.brush", "Shift+B", "Paint the selected mask (Shift+B; [ ] size)"),
    ("eraser", "Mask eraser", "mdi6.eraser", "Shift+X", "Erase from the selected mask (Shift+X)"),
)
# Dock toggles come from the docks themselves; these get a shortcut and an icon as well.
_DOCK_EXTRAS = {"tag_dock": ("Ctrl+T", "mdi6.tag-text-outline")}

Slot = Callable[[], object]


@dataclass(frozen=True)
class ActionSlots:
    """What the actions call besides the session and the settings."""

    open_file: Slot
    open_folder: Slot
    open_path: Callable[[str], object]
    quit: Slot
    export_png: Slot
    export_json: Slot
    export_sr: Slot
    fit_view: Slot
    reset_view: Slot
    step_series: Callable[[int], object]
    set_tool: Callable[[str], object]
    remove_box: Slot
    set_presenter: Callable[[bool], object]
    set_mouse_map: Callable[[MouseMap], object] | None = None  # applies it to the views


class ActionRegistry(QObject):
    """The main window's actions; ``host`` carries their shortcuts and parents the dialogs."""

    def __init__(
        self,
        host: QWidget,
        session: Session,
        settings: Settings,
        slots: ActionSlots,
        dock_toggles: Mapping[str, QAction],
    ) -> None:
        super().__init__(host)
        self._host = host
        self._session = session
        self._settings = settings
        self._slots = slots
        self._build_file_actions()
        self._build_view_actions()
        self._build_window_actions()
        self._build_tool_actions()
        self.dock_actions = list(dock_toggles.values())
        for name, (shortcut, icon) in _DOCK_EXTRAS.items():
            dock_toggles[name].setShortcut(QKeySequence(shortcut))
            dock_toggles[name].setIcon(qta.icon(icon))
        self.about_action = self._make(
            "&About BirdView", self._on_about, "mdi6.information-outline"
        )
        observe(self, session.events.volume, self._on_volume_changed)
        observe(self, session.events.layout, self._on_layout_changed)
        self._on_volume_changed()
        self._on_layout_changed()

    def _make(
        self,
        text: str,
        slot: Slot,
        icon: str | None = None,
        shortcut: str | QKeySequence | QKeySequence.StandardKey | None = None,
        tip: str | None = None,
    ) -> QAction:
        action = QAction(text, self)
        if icon:
            action.setIcon(qta.icon(icon))
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setToolTip(tip)
        action.triggered.connect(lambda *_: slot())
        self._host.addAction(action)  # shortcuts work while menus and tool bar are hidden
        return action

    def _build_file_actions(self) -> None:
        slots, keys = self._slots, QKeySequence.StandardKey
        self.open_file_action = self._make(
            "&Open file…", slots.open_file, "mdi6.file-image-outline", keys.Open
        )
        self.open_folder_action = self._make(
            "Open &folder…", slots.open_folder, "mdi6.folder-open-outline", "Ctrl+Shift+O"
        )
        self.quit_action = self._make("&Quit", slots.quit, "mdi6.exit-to-app", keys.Quit)
        self.export_png_action = self._make(
            "Annotated &PNG of this view…",
            slots.export_png,
            "mdi6.image-move",
            "Ctrl+E",
            "Save this view with its boxes as a PNG",
        )
        self.export_png_2x_action = self._make(
            "Annotated PNG at &2× resolution…",
            lambda: slots.export_png(2.0),
            "mdi6.image-size-select-large",
            "Ctrl+Shift+E",
            "Save this view at twice the resolution, with scale bar, letters and legend",
        )
        self.export_json_action = self._make(
            "Findings as &JSON…", slots.export_json, "mdi6.code-json"
        )
        self.export_sr_action = self._make(
            "DICOM &SR measurement report…", slots.export_sr, "mdi6.file-document"
        )
        self.anonymise_action = QAction("&Anonymise exports (no patient name or ID)", self)
        self.anonymise_action.setCheckable(True)
        self.anonymise_action.setChecked(self._settings.anonymise_exports())
        self.anonymise_action.toggled.connect(self._settings.set_anonymise_exports)

    def _build_view_actions(self) -> None:
        session, slots = self._session, self._slots
        group = QActionGroup(self)
        self.layout_actions: dict[str, QAction] = {}
        for layout, text, icon, key in _LAYOUTS:
            action = self._make(text, lambda layout=layout: session.set_layout(layout), icon, key)
            action.setCheckable(True)
            group.addAction(action)
            self.layout_actions[layout] = action
        # F and R are handled by the focused view; the menu applies to every view.
        self.fit_action = self._make(
            "&Fit to window\tF", slots.fit_view, "mdi6.fit-to-screen-outline"
        )
        self.reset_action = self._make(
            "&Reset zoom and window\tR", slots.reset_view, "mdi6.restore"
        )
        self.mouse_map_action = self._make(
            "&Mouse buttons…",
            self.edit_mouse_map,
            "mdi6.mouse",
            tip="Choose what each mouse button and the wheel do in the views",
        )
        self.mouse_map_dialog: MouseMapDialog | None = None
        self.next_series_action = self._make(
            "&Next series", lambda: slots.step_series(1), shortcut="Ctrl+Down"
        )
        self.previous_series_action = self._make(
            "&Previous series", lambda: slots.step_series(-1), shortcut="Ctrl+Up"
        )

    def _build_window_actions(self) -> None:
        session = self._session
        self.preset_actions: list[QAction] = []
        for number, (name, window) in enumerate(PRESETS.items(), start=1):
            text = f"{name}  (W {window.width:.0f} / L {window.center:.0f})"
            action = self._make(
                text, lambda n=number: session.apply_preset(n), shortcut=str(number)
            )
            self.preset_actions.append(action)
        self.auto_window_action = self._make(
            "&Auto (percentiles)", session.apply_auto_window, "mdi6.contrast-box", "A"
        )
        self.reset_window_action = self._make(
            "Reset to &header window", session.reset_window, shortcut="Shift+R"
        )

    def _build_tool_actions(self) -> None:
        slots = self._slots
        group = QActionGroup(self)
        self.tool_actions: dict[str, QAction] = {}
        for tool, text, icon, key, tip in _TOOLS:
            action = self._make(text, lambda t=tool: slots.set_tool(t), icon, key, tip)
            action.setCheckable(True)
            group.addAction(action)
            self.tool_actions[tool] = action
        self.window_tool_action = self.tool_actions["window"]
        self.box_tool_action = self.tool_actions["box"]
        self.window_tool_action.setChecked(True)
        self.delete_box_action = self._make(
            "Remove box",
            slots.remove_box,
            "mdi6.selection-remove",
            tip="Remove the drawn box (Delete)",
        )
        self.presenter_action = self._make(
            "Presenter",
            lambda: slots.set_presenter(self.presenter_action.isChecked()),
            "mdi6.projector-screen-outline",
            "F11",
            "Presenter mode: full screen, no patient identity, large text (F11, Esc leaves)",
        )
        self.presenter_action.setCheckable(True)

    # -- mouse mapping -----------------------------------------------------------------------

    def edit_mouse_map(self) -> None:
        """Open the mouse buttons dialog (window-modal, not blocking); an accepted map is
        saved in the settings and applied to the views at once (the F1 sheet reads it)."""
        dialog = MouseMapDialog(self._settings.mouse_map(), self._host)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._apply_mouse_map(dialog.mouse_map()))
        dialog.destroyed.connect(lambda *_: setattr(self, "mouse_map_dialog", None))
        self.mouse_map_dialog = dialog
        dialog.open()

    def _apply_mouse_map(self, mouse_map: MouseMap | None) -> None:
        if mouse_map is None:  # OK is disabled while the map cannot work
            return
        self._settings.set_mouse_map(mouse_map)
        if self._slots.set_mouse_map is not None:
            self._slots.set_mouse_map(mouse_map)

    # -- recent studies ----------------------------------------------------------------------

    def fill_recent_menu(self, menu: QMenu) -> None:
        """Rebuild ``menu`` from the recent paths (called each time it is about to show)."""
        menu.clear()
        paths = self._settings.recent_paths()
        for path in paths:
            label = os.path.basename(os.path.normpath(path)) or path
            action = menu.addAction(label)
            action.setToolTip(path)
            action.triggered.connect(lambda *_, p=path: self._slots.open_path(p))
        if not paths:
            menu.addAction("(none)").setEnabled(False)
        else:
            menu.addSeparator()
            menu.addAction("Clear list", self._settings.clear_recent_paths)

    # -- session -> actions ------------------------------------------------------------------

    def _on_volume_changed(self, *_: object) -> None:
        volume = self._session.volume
        is_ct = volume is not None and volume.modality.upper() == "CT"
        for action in self.preset_actions:
            action.setEnabled(is_ct)
        for action in (self.auto_window_action, self.reset_window_action):
            action.setEnabled(volume is not None)

    def _on_layout_changed(self, *_: object) -> None:
        self.layout_actions[self._session.layout].setChecked(True)

    def _on_about(self) -> None:
        QMessageBox.about(self._host, "About BirdView", ABOUT_TEXT)
