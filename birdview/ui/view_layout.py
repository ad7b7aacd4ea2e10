"""`ViewLayout`: the slice views, as 1×1 (main plane only) or 1+3 (main plane large, plus a
column of axial, coronal and sagittal views). All views follow the session's cursor, so a click
in one moves the others; double-clicking a small view makes its plane the main one."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import QApplication, QSplitter, QVBoxLayout, QWidget

from birdview.core.assistant import Assistant
from birdview.core.geometry import Plane
from birdview.core.mouse_map import MouseMap
from birdview.core.session import Session
from birdview.ui._observe import observe
from birdview.ui.slice_view import SliceView

__all__ = ["ViewLayout"]


class ViewLayout(QWidget):
    """The central area of the main window."""

    # Any view's `SliceView.hovered`: (i, j, k) under the mouse or None, with the view's plane
    # and slab (the value shown there is the slab's projection).
    hovered = Signal(object, object, object)

    def __init__(
        self, session: Session, assistant: Assistant | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._session = session
        self._beside: QWidget | None = None  # a second series, between main view and column
        self.main_view = SliceView(session, session.main_plane, assistant=assistant)
        self.small_views = {
            plane: SliceView(session, plane, compact=True, assistant=assistant) for plane in Plane
        }

        self._column = QWidget()
        column_layout = QVBoxLayout(self._column)
        column_layout.setContentsMargins(0, 0, 0, 0)
        column_layout.setSpacing(2)
        for view in self.small_views.values():
            column_layout.addWidget(view)
            view.main_requested.connect(self._on_main_requested)
        for view in (self.main_view, *self.small_views.values()):
            view.hovered.connect(lambda ijk, v=view: self.hovered.emit(ijk, v.plane, v.slab))

        self._splitter = QSplitter(Qt.Orientation.Horizontal)
        self._splitter.setHandleWidth(3)
        self._splitter.addWidget(self.main_view)
        self._splitter.addWidget(self._column)
        self._splitter.setStretchFactor(0, 3)
        self._splitter.setStretchFactor(1, 1)
        self._splitter.setSizes([750, 250])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._splitter)

        observe(self, session.events.layout, self._on_layout_changed)
        observe(self, session.events.main_plane, self._on_main_plane_changed)
        observe(self, session.events.volume, self._on_volume_changed)
        self._apply_layout()

    def views(self) -> list[SliceView]:
        """The views on screen, the main one first."""
        return [self.main_view] + [
            v for v in self.small_views.values() if self._column.isVisibleTo(self)
        ]

    def all_views(self) -> list[SliceView]:
        """Every view of the layout, shown or not."""
        return [self.main_view, *self.small_views.values()]

    def add_beside(self, widget: QWidget) -> None:
        """Place ``widget`` (a second series) right of the main view. While it shows, the main
        view draws the crosshair: the reference position both series are linked at."""
        self._beside = widget
        self._splitter.insertWidget(1, widget)
        self._splitter.setStretchFactor(1, 3)
        widget.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802
        if watched is self._beside and event.type() in (QEvent.Type.Show, QEvent.Type.Hide):
            self._apply_layout()
            if event.type() == QEvent.Type.Show:  # the two series get equal room
                main, beside, column = self._splitter.sizes()
                half = (main + beside) // 2
                self._splitter.setSizes([half, main + beside - half, column])
        return super().eventFilter(watched, event)

    def fit(self) -> None:
        for view in self.views():
            view.fit()

    def reset(self) -> None:
        for view in self.views():
            view.fit()
        self._session.reset_window()

    def set_tool(self, tool: str) -> None:
        """What a left drag does in every view: "window" (W/L) or "box" (draw a box)."""
        for view in (self.main_view, *self.small_views.values()):
            view.tool = tool
            view.viewport().setCursor(
                Qt.CursorShape.ArrowCursor if tool == "window" else Qt.CursorShape.CrossCursor
            )

    def set_mouse_map(self, mouse_map: MouseMap) -> None:
        """What each mouse gesture does, in every view."""
        for view in self.all_views():
            view.mouse_map = mouse_map

    def set_presenter(self, on: bool) -> None:
        for view in (self.main_view, *self.small_views.values()):
            view.set_presenter(on)

    def show_preview(self, image: np.ndarray) -> None:
        """Show a single slice in the main view while its volume loads; blank the others."""
        self.main_view.show_preview(image)
        for view in self.small_views.values():
            view.show_preview(None)

    def clear_preview(self) -> None:
        for view in (self.main_view, *self.small_views.values()):
            view.clear_preview()

    # -- session -> layout -------------------------------------------------------------------

    def _on_layout_changed(self, *_: object) -> None:
        self._apply_layout()

    def _on_volume_changed(self, *_: object) -> None:
        self._apply_layout()

    def _on_main_plane_changed(self, plane: Plane, *_: object) -> None:
        self.main_view.set_plane(plane)

    def _on_main_requested(self, plane: Plane) -> None:
        self._session.set_main_plane(plane)
        # The promoted plane now shows large: its keys go there, not to the small copy (which
        # a 1×1 layout would hide while it kept the focus).
        self.main_view.setFocus(Qt.FocusReason.OtherFocusReason)

    def _apply_layout(self) -> None:
        volume = self._session.volume
        is_3d = volume is None or min(volume.shape) > 1
        multi = self._session.layout == "1+3" and is_3d
        hidden_focus = not multi and self._column.isAncestorOf(QApplication.focusWidget())
        self._column.setVisible(multi)
        if hidden_focus:  # keys go to the view the user sees
            self.main_view.setFocus(Qt.FocusReason.OtherFocusReason)
        beside = self._beside is not None and not self._beside.isHidden()
        for view in (self.main_view, *self.small_views.values()):
            view.show_crosshair = multi or beside
            view.viewport().update()
