"""`PointerOverlay`: presenter mode's laser pointer, spotlight and box reveal animation, drawn
on top of the main view.

It is a transparent child of the view's viewport that lets every mouse event through: the
laser pointer is a red dot where the mouse is (the cursor itself hidden), the spotlight darkens
all of the image but a circle around the mouse, and a box just revealed (N) grows in from a
larger outline to its place.
"""

from __future__ import annotations

from PySide6.QtCore import QEasingCurve, QEvent, QObject, QPointF, QRectF, Qt, QVariantAnimation
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen, QRadialGradient
from PySide6.QtWidgets import QWidget

from birdview.core.exports import box_colour

__all__ = ["PointerOverlay"]

SPOT_RADIUS = 130.0  # viewport pixels
LASER_RADIUS = 9.0
DARKNESS = QColor(0, 0, 0, 185)
_REVEAL_MS = 450


class PointerOverlay(QWidget):
    """Laser pointer and spotlight over ``view`` (a `SliceView`)."""

    def __init__(self, view) -> None:
        super().__init__(view.viewport())
        self.view = view
        self.laser = False
        self.spotlight = False
        self.pos: QPointF | None = None
        self._reveal: tuple | None = None  # (edges_px, colour slot) of the box growing in
        self._grow = 1.0
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self.setAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
        self.setGeometry(view.viewport().rect())
        self._animation = QVariantAnimation(self)
        self._animation.setDuration(_REVEAL_MS)
        self._animation.setStartValue(0.0)
        self._animation.setEndValue(1.0)
        self._animation.setEasingCurve(QEasingCurve.Type.OutCubic)
        self._animation.valueChanged.connect(self._on_grow)
        self._animation.finished.connect(self._on_grown)
        view.viewport().installEventFilter(self)
        self.hide()

    def set_modes(self, *, laser: bool, spotlight: bool) -> None:
        self.laser, self.spotlight = bool(laser), bool(spotlight)
        viewport = self.view.viewport()
        if self.laser:
            viewport.setCursor(Qt.CursorShape.BlankCursor)
        else:
            viewport.setCursor(
                Qt.CursorShape.ArrowCursor
                if self.view.tool == "window"
                else Qt.CursorShape.CrossCursor
            )
        self.setVisible(self.laser or self.spotlight or self._reveal is not None)
        self.raise_()
        self.update()

    def animate_box(self, edges_px: tuple, colour: int) -> None:
        """Grow the outline of a box just revealed into its place."""
        self._reveal = (edges_px, colour)
        self.show()
        self.raise_()
        self._animation.stop()
        self._animation.start()

    # -- events --------------------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        kind = event.type()
        if kind == QEvent.Type.Resize:
            self.setGeometry(self.view.viewport().rect())
        elif kind == QEvent.Type.MouseMove:
            self.pos = event.position()
            if self.laser or self.spotlight:
                self.update()
        elif kind == QEvent.Type.Leave:
            self.pos = None
            self.update()
        return False

    def _on_grow(self, value: float) -> None:
        self._grow = float(value)
        self.update()

    def _on_grown(self) -> None:
        self._reveal = None
        self.setVisible(self.laser or self.spotlight)
        self.view.viewport().update()

    # -- painting ------------------------------------------------------------------------------

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self.spotlight:
            self._paint_spotlight(painter)
        if self._reveal is not None:
            self._paint_reveal(painter)
        if self.laser and self.pos is not None:
            self._paint_laser(painter, self.pos)
        painter.end()

    def _paint_spotlight(self, painter: QPainter) -> None:
        dark = QPainterPath()
        dark.addRect(QRectF(self.rect()))
        if self.pos is not None:
            hole = QPainterPath()
            hole.addEllipse(self.pos, SPOT_RADIUS, SPOT_RADIUS)
            dark = dark.subtracted(hole)
        painter.fillPath(dark, DARKNESS)

    def _paint_laser(self, painter: QPainter, at: QPointF) -> None:
        glow = QRadialGradient(at, LASER_RADIUS * 2.2)
        glow.setColorAt(0.0, QColor(255, 40, 40, 255))
        glow.setColorAt(0.45, QColor(255, 0, 0, 230))
        glow.setColorAt(1.0, QColor(255, 0, 0, 0))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(glow)
        painter.drawEllipse(at, LASER_RADIUS * 2.2, LASER_RADIUS * 2.2)
        painter.setBrush(QColor(255, 230, 230))
        painter.drawEllipse(at, 2.5, 2.5)

    def _paint_reveal(self, painter: QPainter) -> None:
        (x1, y1, x2, y2), colour = self._reveal
        rect = QRectF(self.view.image_to_viewport(x1, y1), self.view.image_to_viewport(x2, y2))
        rect = rect.normalized()
        scale = 1.0 + 1.5 * (1.0 - self._grow)  # from 2.5× its size down to its own
        grown = QRectF(0, 0, rect.width() * scale, rect.height() * scale)
        grown.moveCenter(rect.center())
        c = QColor(*box_colour(colour))
        c.setAlpha(int(255 * (1.0 - 0.6 * self._grow)))
        painter.setPen(QPen(c, 5))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(grown)
