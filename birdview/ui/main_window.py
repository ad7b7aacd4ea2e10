"""`MainWindow`: builds the session, the loader and the widgets, and wires them. Nothing else."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMainWindow, QMenu, QWidget

from birdview.core.assistant import Assistant
from birdview.core.errors import LoadCancelled
from birdview.core.io.catalog import Catalog
from birdview.core.session import Session
from birdview.core.session_store import default_session_dir
from birdview.inference.client import InferenceClient
from birdview.ui.actions import ActionRegistry, ActionSlots
from birdview.ui.annotation_keys import KeyImageControls
from birdview.ui.assistant_controller import AssistantController
from birdview.ui.chat_panel import ChatPanel
from birdview.ui.errors import ErrorReporter
from birdview.ui.export_actions import Exporter
from birdview.ui.help_overlay import HelpOverlay
from birdview.ui.inference_bridge import InferenceBridge
from birdview.ui.label_controls import LabelControls
from birdview.ui.loader import StudyLoader
from birdview.ui.mask_compare_view import MaskCompare
from birdview.ui.mask_controls import MaskControls
from birdview.ui.mask_panel import MaskPanel
from birdview.ui.measure_controller import MeasureController
from birdview.ui.measure_layer import MEASURE_TOOLS
from birdview.ui.menu_bar import MenuBar
from birdview.ui.model_panel import ModelPanel
from birdview.ui.pacs_controls import PacsControls
from birdview.ui.presenter_mode import PresenterMode
from birdview.ui.review_tools import ReviewTools
from birdview.ui.segment_controls import SegmentControls
from birdview.ui.series_browser import SeriesBrowser
from birdview.ui.settings import Settings
from birdview.ui.status_bar import StatusBar
from birdview.ui.tag_browser import TagBrowser
from birdview.ui.tool_bar import ToolBar
from birdview.ui.view_layout import ViewLayout

__all__ = ["MainWindow"]

logger = logging.getLogger(__name__)

_FILE_FILTER = (
    "Images (*.dcm *.DCM *.ima *.nii *.nii.gz *.png *.jpg *.jpeg *.tif *.tiff *.bmp *.zip "
    "DICOMDIR);;All files (*)"
)


class MainWindow(QMainWindow):
    """The viewer's window."""

    def __init__(
        self,
        settings: Settings | None = None,
        parent: QWidget | None = None,
        *,
        client_factory: Callable[[], InferenceClient] = InferenceClient,
        session_dir: str | None = None,
        autoload_model: bool = True,
        demo_model: str | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("BirdView")
        self.setAcceptDrops(True)
        self.settings = settings if settings is not None else Settings()
        self.settings.check_version()
        self.session = Session(layout=self.settings.layout())
        self.assistant = Assistant()
        self.loader = StudyLoader(self)
        self.bridge = InferenceBridge(client_factory, self)
        self.controller = AssistantController(
            self.session,
            self.assistant,
            self.bridge,
            session_dir if session_dir is not None else default_session_dir(),
            self,
        )
        self.presenter = False
        self._before_presenter: dict[QWidget, bool] = {}
        self._normal_geometry = self.saveGeometry()

        self.view_layout = ViewLayout(self.session, self.assistant)
        self.view_layout.set_mouse_map(self.settings.mouse_map())
        self.setCentralWidget(self.view_layout)
        self.series_browser = SeriesBrowser(self.session)
        self.series_dock = self._dock(
            "Series", "series_dock", self.series_browser, Qt.DockWidgetArea.LeftDockWidgetArea
        )
        self.tag_browser = TagBrowser(self.session)
        self.tag_dock = self._dock(
            "DICOM tags", "tag_dock", self.tag_browser, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.tag_dock.hide()
        self.model_panel = ModelPanel(self.assistant, self.controller, self.settings)
        self.model_dock = self._dock(
            "Model", "model_dock", self.model_panel, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.chat_panel = ChatPanel(self.assistant, self.controller)
        self.chat_dock = self._dock(
            "Ask the model", "chat_dock", self.chat_panel, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.status = StatusBar(self.session)
        self.setStatusBar(self.status)
        self.reporter = ErrorReporter(self, self.status)
        self.measure = MeasureController(
            self.session,
            [self.view_layout.main_view, *self.view_layout.small_views.values()],
            self.controller.session_dir,
            self,
        )
        self.exporter = Exporter(
            self,
            self.session,
            self.assistant,
            anonymise=lambda: self.presenter or self.settings.anonymise_exports(),
            report=lambda text: self.status.showMessage(text, 8000),
            report_error=self.reporter.report,
            settings=self.settings,
            measurements=self.measure.measurements,
        )
        self.labels = LabelControls(
            self,
            self.session,
            [self.view_layout.main_view, *self.view_layout.small_views.values()],
            assistant=self.assistant,
            session_dir=self.controller.session_dir,
            report_error=self.reporter.report,
        )
        self.exporter.labels = self.labels.overlay  # PNG exports draw the labels shown
        self.labels_dock = self._dock(
            "Labels", "labels_dock", self.labels.legend, Qt.DockWidgetArea.LeftDockWidgetArea
        )
        self.key_images = KeyImageControls(
            self,
            self.session,
            self.assistant,
            [self.view_layout.main_view, *self.view_layout.small_views.values()],
            self.controller.session_dir,
            main_view=self.view_layout.main_view,
            measurements=lambda: self.measure.measurements.items,
            anonymise=self.exporter.anonymised,
            report_error=self.reporter.report,
        )
        self.presenter_mode = PresenterMode(
            self, self.session, self.assistant, self.chat_panel.edits, self.view_layout.main_view
        )
        self.action_registry = self._build_actions()
        self.tool_bar = ToolBar(self.action_registry, self)
        self.addToolBar(self.tool_bar)
        presenter_action = self.action_registry.presenter_action
        self.review = ReviewTools(
            self, self.session, self.view_layout, self.series_browser, presenter_action
        )
        self.addToolBar(self.review.tool_bar)
        self.setMenuBar(MenuBar(self.action_registry, self))
        self.review.add_to_menu(self.menuBar())
        self.help_overlay = HelpOverlay(self, lambda: self.view_layout.main_view.mouse_map)
        self.menuBar().help_menu.insertAction(
            self.action_registry.about_action, self.help_overlay.action
        )
        self.labels.add_to_menu(self.menuBar().file_menu, self.menuBar().recent_menu.menuAction())
        self.pacs = PacsControls(
            self,
            self.session,
            self.assistant,
            self.open_path,
            measurements=lambda: self.measure.measurements.items,
            key_images=lambda: self.key_images.keys.items,
            label_map=lambda: self.labels.overlay.label_map,
            masks=lambda: self.masks.masks,
            report_error=self.reporter.report,
        )
        self.pacs.add_to_menu(self.menuBar().file_menu, self.menuBar().recent_menu.menuAction())
        tools = self.action_registry.tool_actions
        measure_menu = self.measure.add_menu(self.menuBar(), [tools[t] for t in MEASURE_TOOLS])
        self.masks = MaskControls(
            self,
            self.session,
            [self.view_layout.main_view, *self.view_layout.small_views.values()],
            self.controller.session_dir,
            (self.measure.undo_action, self.measure.redo_action),
            report=lambda text: self.status.showMessage(text, 8000),
            report_error=self.reporter.report,
        )
        self.segment = SegmentControls(
            self,
            self.session,
            self.assistant,
            self.bridge,
            self.masks.masks,
            self.settings,
            report=lambda text: self.status.showMessage(text, 15000),
            report_error=self.reporter.report,
        )
        self.segment.add_to_menu(measure_menu)
        self.masks.add_to_menu(measure_menu)
        self.mask_panel = MaskPanel(self.session, self.masks, self.segment, tools)
        self.masks_dock = self._dock(
            "Masks", "masks_dock", self.mask_panel, Qt.DockWidgetArea.LeftDockWidgetArea
        )
        self.tabifyDockWidget(self.labels_dock, self.masks_dock)  # one column, two tabs
        self.labels_dock.raise_()
        for tool, action in tools.items():  # the active tool decides who gets Ctrl+Z
            action.toggled.connect(lambda on, t=tool: on and self.masks.set_tool(t))
        self.exporter.masks = self.masks.masks  # Export DICOM SR writes SEG + NIfTI with masks
        self.mask_compare = MaskCompare(
            self,
            self.session,
            self.masks.masks,
            self.labels.overlay,
            self.assistant,
            self.labels.legend,
        )
        measure_menu.addAction(self.mask_compare.action)
        self._wire()
        self._restore_state()
        if autoload_model:
            self._autoload(demo_model)

    def _autoload(self, demo_model: str | None) -> None:
        """The configured checkpoint, else the bundled demo: a configured one that fails to
        load stays failed, with its message, and is never replaced by the demo."""
        if self.settings.model_dir():
            QTimer.singleShot(0, self.model_panel.load)
        elif demo_model:
            QTimer.singleShot(0, lambda: self.model_panel.load_demo(demo_model))

    # -- opening -----------------------------------------------------------------------------

    def open_path(self, path: str) -> None:
        """Scan ``path`` (file, folder or .zip) and open its first series, in the background."""
        path = os.fspath(path)
        self.settings.add_recent_path(path)
        name = os.path.basename(os.path.normpath(path)) or path
        self.status.showMessage("Opening…" if self.session.phi_hidden else f"Opening {name}…")
        self.loader.open_path(path)

    def open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open file", self.settings.last_directory(), _FILE_FILTER
        )
        if path:
            self.settings.set_last_directory(os.path.dirname(path))
            self.open_path(path)

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open folder", self.settings.last_directory())
        if path:
            self.settings.set_last_directory(os.path.dirname(os.path.normpath(path)))
            self.open_path(path)

    # -- wiring ------------------------------------------------------------------------------

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)  # saveState needs names
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_actions(self) -> ActionRegistry:
        slots = ActionSlots(
            open_file=self.open_file_dialog,
            open_folder=self.open_folder_dialog,
            open_path=self.open_path,
            quit=self.close,
            export_png=self.exporter.png,
            export_json=self.exporter.json,
            export_sr=lambda: self.key_images.export_beside(self.exporter.dicom_sr()),
            fit_view=self.view_layout.fit,
            reset_view=self.view_layout.reset,
            step_series=self.series_browser.request_relative,
            set_tool=self.view_layout.set_tool,
            remove_box=lambda: self.assistant.set_user_box(None),
            set_presenter=self.set_presenter,
        )
        docks = (self.series_dock, self.labels_dock, self.tag_dock, self.model_dock, self.chat_dock)
        toggles = {dock.objectName(): dock.toggleViewAction() for dock in docks}
        return ActionRegistry(self, self.session, self.settings, slots, toggles)

    def _wire(self) -> None:
        loader = self.loader
        loader.scanned.connect(self._on_scanned)
        loader.previewed.connect(self.view_layout.show_preview)
        loader.progressed.connect(self.status.set_progress)
        loader.loaded.connect(self._on_loaded)
        loader.failed.connect(self._on_load_failed)
        loader.busy_changed.connect(self.status.set_busy)
        self.status.cancel_requested.connect(loader.cancel)
        self.view_layout.hovered.connect(self.status.show_voxel)
        self.series_browser.series_requested.connect(self._on_series_requested)
        self.session.events.layout.connect(self.settings.set_layout)
        self.chat_panel.box_clicked.connect(self.show_box)
        self.controller.message.connect(lambda text: self.status.showMessage(text, 8000))
        self.measure.message.connect(lambda text: self.status.showMessage(text, 8000))
        self.key_images.message.connect(lambda text: self.status.showMessage(text, 8000))
        self._add_annotate_menu()
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self._on_escape)

    def _add_annotate_menu(self) -> None:
        """Key images, the conversation's undoable edits and presenter mode's teaching keys."""
        views = [self.view_layout.main_view, *self.view_layout.small_views.values()]
        chat = self.chat_panel.conversation
        measuring = self.measure.measurements
        chat.watch_views(views, self.session, lambda: measuring.selected is not None)
        self.key_images.add_to_menus(self.menuBar().export_menu, None)
        bar = self.menuBar()
        menu = QMenu("&Annotate", bar)
        menu.addAction(self.key_images.mark_action)
        menu.addSeparator()
        menu.addActions([chat.clear_action, chat.hide_all_action, chat.delete_box_action])
        menu.addActions([chat.undo_action, chat.redo_action])
        menu.addSeparator()
        menu.addActions([self.presenter_mode.phi_action, *self.presenter_mode.actions])
        bar.insertMenu(bar.actions()[-2], menu)  # before Measure, which stays next to Help
        session = self.session
        session.events.phi_hidden.connect(lambda *_: self.pacs.set_presenter(session.phi_hidden))

    # -- model results -----------------------------------------------------------------------

    def show_box(self, turn_id: int, index: int) -> None:
        """Select an answer box and bring its slice into the main view, centred on it."""
        placed = self.assistant.select(turn_id, index)
        volume = self.session.volume
        if placed is None or volume is None:
            return
        self.session.set_main_plane(placed.box.plane)
        self.session.move_cursor(placed.box.to_voxel_corners(volume).mean(axis=0))

    def set_presenter(self, on: bool) -> None:
        """Presenter mode: full screen, only the image and the chat, no patient identity,
        larger text and thicker boxes (Esc or F11 leaves it)."""
        if bool(on) == self.presenter:
            return
        self.presenter = bool(on)
        chrome = (
            self.menuBar(),
            self.review.tool_bar,
            self.status,
            *self._docks_off_in_presenter_mode(),
        )
        if on:
            self._before_presenter = {w: w.isVisible() for w in chrome}
            self._normal_geometry = self.saveGeometry()
            for widget in chrome:
                widget.hide()
            self.setGeometry(self.screen().geometry())  # also without a window manager
            self.showFullScreen()
        else:
            for widget, visible in self._before_presenter.items():
                widget.setVisible(visible)
            self.showNormal()
            self.restoreGeometry(self._normal_geometry)
        self.view_layout.set_presenter(self.presenter)
        self.chat_panel.set_presenter(self.presenter)
        self.presenter_mode.set_on(self.presenter)  # hides identity: the PACS browser follows
        self.action_registry.presenter_action.setChecked(self.presenter)

    def _docks_off_in_presenter_mode(self) -> list[QDockWidget]:
        """Every dock but the chat, and the labels' legend while it shows labels: on a
        projector the image needs the room (and any other dock, enlarged, would take it)."""
        kept = [self.chat_dock]
        if self.labels.overlay.label_map is not None:
            kept.append(self.labels_dock)
        return [dock for dock in self.findChildren(QDockWidget) if dock not in kept]

    def _on_escape(self) -> None:
        if self.presenter:
            self.set_presenter(False)
        elif self.assistant.busy:
            self.controller.cancel()
        else:  # back to the default tool, dropping a measurement being drawn
            self.measure.cancel()
            self.action_registry.tool_actions["window"].trigger()

    def _on_scanned(self, catalog: Catalog) -> None:
        self.session.open_catalog(catalog)
        if catalog.problems:
            self.reporter.report_problems(catalog.problems, fatal=not catalog.entries)
        elif not catalog.entries:
            self.reporter.report("Nothing to open", f"No images were found in {catalog.root!r}.")

    def _on_series_requested(self, entry: object) -> None:
        if self.labels.open_entry(entry):  # a SEG: over the open study, not as images
            return
        self.status.showMessage("Loading series…")
        self.loader.load_entry(entry)

    def _on_loaded(self, volume: object, entry: object, plane: object) -> None:
        self.session.open_volume(volume, entry, plane)
        notes = list(volume.warnings)
        problems = self.session.catalog.problems if self.session.catalog is not None else []
        if problems:
            noun = "file" if len(problems) == 1 else "files"
            notes.append(f"{len(problems)} {noun} could not be read (see the series browser)")
        self.status.showMessage("; ".join(notes) if notes else "Ready", 0 if notes else 4000)
        self.view_layout.main_view.setFocus()

    def _on_load_failed(self, exc: BaseException) -> None:
        self.view_layout.clear_preview()
        self.reporter.report_exception(exc)
        if not isinstance(exc, LoadCancelled):
            logger.info("load failed: %s", type(exc).__name__)

    # -- window state ------------------------------------------------------------------------

    def _restore_state(self) -> None:
        geometry = self.settings.geometry()
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1400, 900)
        docks = self.settings.dock_state()
        self._first_show = docks is None or not self.restoreState(docks)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self._first_show:  # no saved dock layout: give the browser room for its names
            self._first_show = False
            QTimer.singleShot(0, self._first_dock_sizes)

    def _first_dock_sizes(self) -> None:
        horizontal, vertical = Qt.Orientation.Horizontal, Qt.Orientation.Vertical
        self.resizeDocks([self.series_dock, self.chat_dock], [300, 430], horizontal)
        self.resizeDocks([self.model_dock, self.chat_dock], [200, 650], vertical)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.set_presenter(False)  # save the normal layout, not the presenter's
        self.loader.shutdown()
        self.pacs.close()
        self.controller.save_now()
        self.labels.save_now()
        self.measure.save_now()
        self.masks.save_now()
        self.bridge.shutdown()
        self.settings.set_geometry(self.saveGeometry())
        self.settings.set_dock_state(self.saveState())
        self.settings.sync()
        super().closeEvent(event)

    # -- drag and drop -----------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if not paths:
            return
        event.acceptProposedAction()
        self.open_path(_one_path(paths))


def _one_path(paths: list[str]) -> str:
    """What to scan for dropped items: the item itself, or the folder several files share."""
    if len(paths) == 1:
        return paths[0]
    parents = {os.path.dirname(os.path.normpath(p)) for p in paths}
    return parents.pop() if len(parents) == 1 else paths[0]
