"""`KeyImageControls`: "Mark as key image" (K), the badge on key slices, the per-study file
and File → Export → Key images.

It keeps one `KeyImages` set for the open study: when a study opens the set is saved under the
study it belonged to and reset to the new study's saved key images (refused when the file is of
another study; an unreadable file is reported and left as it is). Every change is saved at once
(a set of slice numbers is small).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import qtawesome as qta
from PySide6.QtCore import QObject, QPointF, QRectF, Signal
from PySide6.QtGui import QAction, QColor, QFont, QFontMetricsF, QKeySequence, QPainter
from PySide6.QtWidgets import QFileDialog, QGraphicsItem, QMenu, QWidget

from birdview.core import geometry
from birdview.core.assistant import Assistant
from birdview.core.key_images import KeyImage, KeyImages, load_key_images, save_key_images
from birdview.core.key_images_export import export_key_images
from birdview.core.session import Session
from birdview.ui._observe import observe

__all__ = ["KeyImageControls"]

logger = logging.getLogger(__name__)

BADGE = "★ KEY IMAGE"
_GOLD = QColor(255, 200, 0)


class _Badge(QGraphicsItem):
    """ "★ KEY IMAGE" at the top centre of a view whose slice is a key image."""

    def __init__(self, view, controls: KeyImageControls) -> None:
        super().__init__()
        self._view, self._controls = view, controls
        self.setZValue(11)

    def boundingRect(self) -> QRectF:  # noqa: N802 - always drawn: the view decides what shows
        return QRectF(-1e4, -1e4, 2e4, 2e4)

    def paint(self, painter: QPainter, *_: object) -> None:
        if not self._controls.is_key(self._view):
            return
        painter.save()
        painter.resetTransform()
        font = QFont(self._view.font())
        font.setPixelSize(22 if getattr(self._view, "presenter", False) else 13)
        font.setBold(True)
        painter.setFont(font)
        metrics = QFontMetricsF(font)
        width = self._view.viewport().width()
        # Below the orientation letter at the top edge's middle, which it must not cover.
        below_letter = 2.4 * font.pixelSize()
        at = QPointF(
            (width - metrics.horizontalAdvance(BADGE)) / 2, below_letter + metrics.ascent()
        )
        painter.setPen(QColor(0, 0, 0, 220))
        for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            painter.drawText(at + QPointF(dx, dy), BADGE)
        painter.setPen(_GOLD)
        painter.drawText(at, BADGE)
        painter.restore()


class KeyImageControls(QObject):
    """Key images of the study open in ``session``, shown on ``views``.

    Signals:
        message(text): for the status bar.
    """

    message = Signal(str)

    def __init__(
        self,
        host: QWidget,
        session: Session,
        assistant: Assistant,
        views: Iterable[QWidget],
        session_dir: str | os.PathLike | None,
        *,
        main_view: QWidget,
        measurements: Callable[[], tuple] = tuple,
        anonymise: Callable[[], bool] = lambda: False,
        report_error: Callable[[str, str], None] = lambda title, text: None,
    ) -> None:
        super().__init__(host)
        self.session, self.assistant = session, assistant
        self.keys = KeyImages()
        self.session_dir = Path(session_dir) if session_dir is not None else None
        self._main_view = main_view
        self._measurements, self._anonymise, self._report_error = (
            measurements,
            anonymise,
            report_error,
        )
        self.views = list(views)
        for view in self.views:
            view.scene().addItem(_Badge(view, self))
        # The folder dialog of the export; replaceable in tests.
        self.ask_folder: Callable[[str], str] = self._ask_folder
        self.mark_action = QAction(qta.icon("mdi6.star-outline"), "Mark as &key image", self)
        self.mark_action.setShortcut(QKeySequence("K"))
        self.mark_action.setToolTip("Mark this slice as a key image, or unmark it (K)")
        self.mark_action.triggered.connect(lambda *_: self.toggle())
        host.addAction(self.mark_action)
        self.export_action = QAction(
            qta.icon("mdi6.star-box-multiple-outline"), "&Key images…", self
        )
        self.export_action.setToolTip("PNGs of the key images and a DICOM Key Object Selection")
        self.export_action.triggered.connect(lambda *_: self.export())
        self.keys.changed.connect(self._on_changed)
        observe(self, session.events.volume, self._on_volume_changed)
        observe(self, session.events.cursor_ijk, self._repaint)
        observe(self, session.events.main_plane, self._repaint)
        self._on_volume_changed()

    def add_to_menus(self, export_menu: QMenu | None, tools_menu: QMenu | None) -> None:
        if export_menu is not None:
            export_menu.insertAction(export_menu.actions()[-1], self.export_action)
        if tools_menu is not None:
            tools_menu.addAction(self.mark_action)

    def is_key(self, view) -> bool:
        if self.session.volume is None:
            return False
        plane = view.plane
        return KeyImage(plane, self.session.slice_index(plane)) in self.keys

    def toggle(self) -> None:
        """Mark the main view's slice as a key image, or unmark it."""
        if self.session.volume is None:
            return
        plane = self._main_view.plane
        index = self.session.slice_index(plane)
        marked = self.keys.toggle(plane, index)
        name = f"{plane.value} {geometry.slice_name(self.session.volume, plane, index)}"
        self.message.emit(f"{'Marked' if marked else 'Unmarked'} {name} as a key image")

    # -- export --------------------------------------------------------------------------------

    def export(self, folder: str | None = None) -> str | None:
        """Write the key images' PNGs (and a KOS for a DICOM study) into ``folder``, or into a
        folder the user picks."""
        volume, window = self.session.volume, self.session.window
        if volume is None or window is None:
            return None
        if not self.keys.items:
            self._report_error("No key images", "Mark a slice as a key image first (K).")
            return None
        folder = folder or self.ask_folder("Export key images into a folder")
        if not folder:
            return None
        try:
            result = export_key_images(
                self.assistant.to_record(), volume, folder, self.keys.items, window=window,
                stem=f"birdview-{volume.short_id}", boxes_on=self._boxes_on,
                measurements=self._measurements(), anonymise=self._anonymise(),
            )  # fmt: skip
        except (OSError, ValueError) as exc:
            logger.warning("key image export failed: %s", type(exc).__name__)
            self._report_error("Could not export the key images", str(exc))
            return None
        names = [Path(p).name for p in (*result.pngs, result.kos) if p]
        where = Path(folder).name if self.session.phi_hidden else folder  # may name the patient
        self.message.emit(f"Exported {len(result.pngs)} key images to {where}: {', '.join(names)}")
        return folder

    def export_beside(self, report: str | None) -> str | None:
        """After the report at ``report`` was written, the key images go beside it: the SR
        export carries them with the rest. Returns ``report``."""
        if report and self.keys.items:
            self.export(str(Path(report).parent))
        return report

    def _boxes_on(self, plane, index: int):
        placed = self.assistant.boxes_on(plane, index)
        return [p.box for p in placed], [p.colour for p in placed]

    def _ask_folder(self, title: str) -> str:
        return QFileDialog.getExistingDirectory(self.parent(), title, str(Path.home()))

    # -- persistence ---------------------------------------------------------------------------

    def _on_volume_changed(self, *_: object) -> None:
        volume = self.session.volume
        if volume is None:
            self.keys.reset(None)
            return
        items: list[KeyImage] = []
        if self.session_dir is not None:
            try:
                items = load_key_images(volume.identity, self.session_dir)
            except (OSError, ValueError) as exc:
                self.message.emit(f"The saved key images could not be restored: {exc}")
        self.keys.reset(volume.identity, items)

    def _on_changed(self) -> None:
        self._repaint()
        study = self.keys.study
        if study is None or self.session_dir is None:
            return
        try:
            save_key_images(study, self.keys.items, self.session_dir)
        except (OSError, ValueError) as exc:
            logger.warning("saving key images failed: %s", type(exc).__name__)
            self.message.emit(f"The key images could not be saved: {exc}")

    def _repaint(self, *_: object) -> None:
        for view in self.views:
            view.viewport().update()
