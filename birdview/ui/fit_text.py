"""`WrappedLabel`: a word-wrapped QLabel whose minimum height is the height its text needs at
its current width, so a dock or a layout that knows nothing of height-for-width (QMainWindow's
docks) cannot cut its last line off."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtWidgets import QLabel, QWidget

__all__ = ["WrappedLabel"]


class WrappedLabel(QLabel):
    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setWordWrap(True)
        self._width = 0

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        hint = super().minimumSizeHint()
        if self.width() <= 0:
            return hint
        return QSize(hint.width(), max(hint.height(), self.heightForWidth(self.width())))

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if event.size().width() != self._width:  # a new width: a new height is needed
            self._width = event.size().width()
            self.updateGeometry()
