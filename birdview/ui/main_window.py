"""`MainWindow`: builds the session, the loader and the widgets, and wires them. Nothing else.

What the window is made of is listed here; the parts that need several others are built in
sibling modules: opening studies (`study_opener`), the actions and the Annotate menu
(`window_menus`), feature groups with their docks and menu entries (`window_features`) and
presenter mode's hidden chrome (`presenter_chrome`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QDockWidget, QMainWindow, QWidget

from birdview.core.assistant import Assistant
from birdview.core.session import Session
from birdview.core.session_store import default_session_dir
from birdview.inference.client import InferenceClient
from birdview.ui.assistant_controller import AssistantController
from birdview.ui.chat_panel import ChatPanel
from birdview.ui.errors import ErrorReporter
from birdview.ui.export_actions import Exporter
from birdview.ui.help_overlay import HelpOverlay
from birdview.ui.inference_bridge import InferenceBridge
from birdview.ui.label_controls import LabelControls
from birdview.ui.loader import StudyLoader
from birdview.ui.measure_controller import MeasureController
from birdview.ui.measure_layer import MEASURE_TOOLS
from birdview.ui.menu_bar import MenuBar
from birdview.ui.model_panel import ModelPanel
from birdview.ui.presenter_chrome import PresenterChrome, docks_to_hide
from birdview.ui.presenter_mode import PresenterMode
from birdview.ui.review_tools import ReviewTools
from birdview.ui.series_browser import SeriesBrowser
from birdview.ui.settings import Settings
from birdview.ui.status_bar import StatusBar
from birdview.ui.study_opener import StudyOpener, one_path
from birdview.ui.tag_browser import TagBrowser
from birdview.ui.tool_bar import ToolBar
from birdview.ui.view_layout import ViewLayout
from birdview.ui.window_features import add_dock, add_key_images, add_masks, add_pacs
from birdview.ui.window_menus import add_annotate_menu, build_actions

__all__ = ["MainWindow"]

logger = logging.getLogger(__name__)

_LEFT, _RIGHT = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea


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
        self._chrome = PresenterChrome(self)
        self._build_views()
        self._build_annotation()
        self._build_menus()
        self._wire()
        self._restore_state()
        if autoload_model:
            self._autoload(demo_model)

    def _build_views(self) -> None:
        """The slice views in the middle, the browsers, model and chat docks, the status bar."""
        self.view_layout = ViewLayout(self.session, self.assistant)
        self.view_layout.set_mouse_map(self.settings.mouse_map())
        self.setCentralWidget(self.view_layout)
        self.series_browser = SeriesBrowser(self.session)
        self.series_dock = add_dock(self, "Series", "series_dock", self.series_browser, _LEFT)
        self.tag_browser = TagBrowser(self.session)
        self.tag_dock = add_dock(self, "DICOM tags", "tag_dock", self.tag_browser, _RIGHT)
        self.tag_dock.hide()
        self.model_panel = ModelPanel(self.assistant, self.controller, self.settings)
        self.model_dock = add_dock(self, "Model", "model_dock", self.model_panel, _RIGHT)
        self.chat_panel = ChatPanel(self.assistant, self.controller)
        self.chat_dock = add_dock(self, "Ask the model", "chat_dock", self.chat_panel, _RIGHT)
        self.status = StatusBar(self.session)
        self.setStatusBar(self.status)
        self.reporter = ErrorReporter(self, self.status)

    def _build_annotation(self) -> None:
        """Measurements, exports, label maps, key images and presenter mode."""
        views, session_dir = self.view_layout.all_views(), self.controller.session_dir
        self.measure = MeasureController(self.session, views, session_dir, self)
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
            views,
            assistant=self.assistant,
            session_dir=session_dir,
            report_error=self.reporter.report,
        )
        self.exporter.labels = self.labels.overlay  # PNG exports draw the labels shown
        self.labels_dock = add_dock(self, "Labels", "labels_dock", self.labels.legend, _LEFT)
        add_key_images(self)
        self.presenter_mode = PresenterMode(
            self, self.session, self.assistant, self.chat_panel.edits, self.view_layout.main_view
        )

    def _build_menus(self) -> None:
        """Tool bars and menus, then the features that add their own entries to them."""
        self.action_registry = build_actions(self)
        self.tool_bar = ToolBar(self.action_registry, self)
        self.addToolBar(self.tool_bar)
        presenter_action = self.action_registry.presenter_action
        self.review = ReviewTools(
            self,
            self.session,
            self.view_layout,
            self.series_browser,
            presenter_action,
            settings=self.settings,
        )
        self.addToolBar(self.review.tool_bar)
        self.setMenuBar(MenuBar(self.action_registry, self))
        self.review.add_to_menu(self.menuBar())
        self.help_overlay = HelpOverlay(self, lambda: self.view_layout.main_view.mouse_map)
        self.menuBar().help_menu.insertAction(
            self.action_registry.about_action, self.help_overlay.action
        )
        self.labels.add_to_menu(self.menuBar().file_menu, self.menuBar().recent_menu.menuAction())
        add_pacs(self)
        tools = self.action_registry.tool_actions
        measure_menu = self.measure.add_menu(self.menuBar(), [tools[t] for t in MEASURE_TOOLS])
        add_masks(self, measure_menu)

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
        self.opener.open_path(path)

    def open_file_dialog(self) -> None:
        self.opener.open_file_dialog()

    def open_folder_dialog(self) -> None:
        self.opener.open_folder_dialog()

    # -- wiring ------------------------------------------------------------------------------

    def _wire(self) -> None:
        self.opener = StudyOpener(
            self,
            self.session,
            self.settings,
            self.loader,
            self.status,
            self.reporter,
            self.view_layout,
            open_seg=self.labels.open_entry,  # a SEG: over the open study, not as images
        )
        self.view_layout.hovered.connect(self.status.show_voxel)
        self.series_browser.series_requested.connect(self.opener.open_entry)
        self.session.events.layout.connect(self.settings.set_layout)
        self.chat_panel.box_clicked.connect(self.show_box)
        for source in (self.controller, self.measure, self.key_images):
            source.message.connect(lambda text: self.status.showMessage(text, 8000))
        add_annotate_menu(self)
        session = self.session
        session.events.phi_hidden.connect(lambda *_: self.pacs.set_presenter(session.phi_hidden))
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self._on_escape)

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
        if on:
            bars = (self.menuBar(), self.review.tool_bar, self.status)
            self._chrome.enter([*bars, *self._docks_off_in_presenter_mode()])
        else:
            self._chrome.leave()
        self.view_layout.set_presenter(self.presenter)
        self.chat_panel.set_presenter(self.presenter)
        self.presenter_mode.set_on(self.presenter)  # hides identity: the PACS browser follows
        self.action_registry.presenter_action.setChecked(self.presenter)

    def _docks_off_in_presenter_mode(self) -> list[QDockWidget]:
        """Every dock but the chat, and the labels' legend while it shows labels."""
        kept = [self.chat_dock]
        if self.labels.overlay.label_map is not None:
            kept.append(self.labels_dock)
        return docks_to_hide(self, kept)

    def _on_escape(self) -> None:
        if self.presenter:
            self.set_presenter(False)
        elif self.assistant.busy:
            self.controller.cancel()
        else:  # back to the default tool, dropping a measurement being drawn
            self.measure.cancel()
            self.action_registry.tool_actions["window"].trigger()

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
        self.open_path(one_path(paths))
