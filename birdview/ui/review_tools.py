"""`ReviewTools`: cine, thick slab and side-by-side review, with their tool bar.

Built by the main window with the widgets it already has; it owns the `CinePlayer`, the
`SlabControls` and the `ComparePane`, places the pane beside the main view, and adds "Open
beside for comparison" to the series browser's context menu. The cine frame rate and the slab
are the reader's preferences: kept in the settings and chosen again at the next start.
"""

from __future__ import annotations

import qtawesome as qta
from PySide6.QtCore import QObject, QPoint, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMenu,
    QMenuBar,
    QToolBar,
    QTreeWidgetItem,
    QWidget,
)

from birdview.core.io.catalog import SeriesEntry
from birdview.core.session import Session
from birdview.ui.cine import CinePlayer
from birdview.ui.compare import ComparePane
from birdview.ui.series_browser import SeriesBrowser
from birdview.ui.settings import Settings
from birdview.ui.slab_controls import SlabControls

__all__ = ["ReviewTools"]


class ReviewTools(QObject):
    """The review tools of one main window."""

    def __init__(
        self,
        host: QWidget,
        session: Session,
        view_layout,
        browser: SeriesBrowser,
        presenter_action: QAction,
        settings: Settings | None = None,
    ) -> None:
        super().__init__(host)
        self._browser = browser
        self.cine = CinePlayer(host, session, view_layout)
        self.compare = ComparePane(session)
        view_layout.add_beside(self.compare)
        self.slab = SlabControls([*view_layout.all_views(), self.compare.view], self)
        self._remember(settings if settings is not None else Settings())
        presenter_action.toggled.connect(self.compare.set_presenter)
        self.open_beside_action = QAction(
            qta.icon("mdi6.book-open-page-variant-outline"), "Open a study beside…", self
        )
        self.open_beside_action.setToolTip("Open a prior or another series next to this one")
        self.open_beside_action.triggered.connect(self._on_open_beside)
        self.close_compare_action = QAction(
            qta.icon("mdi6.book-open-outline"), "Close side-by-side", self
        )
        self.close_compare_action.triggered.connect(self.compare.close_series)
        browser.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        browser.tree.customContextMenuRequested.connect(self._on_tree_menu)
        self.tool_bar = self._build_tool_bar()

    def _remember(self, settings: Settings) -> None:
        """Start with the frame rate and slab the reader chose last time (preferences, not a
        study's), and keep each new choice."""
        self.cine.set_fps(settings.cine_fps())
        saved = settings.slab()
        self.slab.set_slab(saved.mode, saved.thickness_mm)
        self.cine.fps_box.valueChanged.connect(settings.set_cine_fps)
        self.slab.changed.connect(settings.set_slab)

    def _build_tool_bar(self) -> QToolBar:
        bar = QToolBar("Review")
        bar.setObjectName("review_bar")  # saveState needs names
        bar.addAction(self.cine.play_action)
        bar.addWidget(self.cine.fps_box)
        bar.addSeparator()
        bar.addWidget(QLabel(" Slab "))
        bar.addWidget(self.slab.mode_box)
        bar.addWidget(self.slab.thickness_box)
        return bar

    def add_to_menu(self, menu_bar: QMenuBar) -> None:
        """Cine and closing the side-by-side series at the end of the View menu."""
        view = next((a.menu() for a in menu_bar.actions() if a.text() == "&View"), None)
        if view is not None:
            view.addSeparator()
            view.addActions(
                [self.cine.play_action, self.open_beside_action, self.close_compare_action]
            )

    def menu_for(self, item: QTreeWidgetItem | None) -> QMenu | None:
        """The series browser's context menu for ``item`` (None where it is not a series)."""
        entry = item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None
        if not isinstance(entry, SeriesEntry):
            return None
        menu = QMenu(self._browser)
        action = menu.addAction(
            qta.icon("mdi6.book-open-page-variant-outline"), "Open beside for comparison"
        )
        action.triggered.connect(lambda *_: self.compare.open_entry(entry))
        if self.compare.isVisible():
            menu.addAction(self.close_compare_action)
        return menu

    def _on_open_beside(self) -> None:
        path = QFileDialog.getExistingDirectory(self._browser, "Open a study beside this one")
        if path:
            self.compare.open_path(path)

    def _on_tree_menu(self, pos: QPoint) -> None:
        tree = self._browser.tree
        menu = self.menu_for(tree.itemAt(pos))
        if menu is not None:
            menu.exec(tree.viewport().mapToGlobal(pos))
