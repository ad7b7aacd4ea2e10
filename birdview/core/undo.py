"""`UndoHistory`: the undo and redo stacks of an editable model (measurements, masks).

A step is whatever the model needs to take a change back; `undo` and `redo` hand it to the
model's ``apply``, which puts it back and returns the step that reverses that, so one step
moves between the two stacks. Each new change clears the redo stack; the oldest steps beyond
``limit`` are dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["UndoHistory"]


class UndoHistory:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._undo: list[Any] = []
        self._redo: list[Any] = []

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def push(self, step: Any) -> None:
        """A change was made; ``step`` takes it back."""
        self._undo.append(step)
        del self._undo[: -self.limit]
        self._redo.clear()

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()

    def undo(self, apply: Callable[[Any], Any]) -> bool:
        """Take back the last change with ``apply``; False when there is none."""
        return _move(self._undo, self._redo, apply)

    def redo(self, apply: Callable[[Any], Any]) -> bool:
        """Do again what undo took back; False when there is nothing to redo."""
        return _move(self._redo, self._undo, apply)


def _move(source: list, target: list, apply: Callable[[Any], Any]) -> bool:
    if not source:
        return False
    target.append(apply(source.pop()))
    return True
