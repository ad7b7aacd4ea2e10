"""`MeasurementSet`: the measurements of the open study, their selection and undo/redo.

Qt-free and observable (psygnal): the views draw from it and change it only through its
methods. Every change (add, edit, delete, clear) is one undo step; a drag is committed once, on
release, so undo takes back the whole drag. The set belongs to one study (`study`, a
`Volume.identity`); `reset` starts another study's set with an empty history.
"""

from __future__ import annotations

from collections.abc import Iterable

from psygnal import Signal

from birdview.core.geometry import Plane
from birdview.core.measure import Measurement
from birdview.core.undo import UndoHistory

__all__ = ["MeasurementSet"]

_MAX_UNDO = 200


class MeasurementSet:
    """An ordered list of `Measurement`s with one selected (or none).

    Signals:
        changed(): the measurements changed (also after undo and redo).
        selection_changed(index or None)
    """

    changed = Signal()
    selection_changed = Signal(object)

    def __init__(self) -> None:
        self.study: str | None = None
        self._items: tuple[Measurement, ...] = ()
        self._history = UndoHistory(_MAX_UNDO)  # steps: the whole list before the change
        self.selected: int | None = None

    @property
    def items(self) -> tuple[Measurement, ...]:
        return self._items

    def __len__(self) -> int:
        return len(self._items)

    def on(self, plane: Plane, slice_index: int) -> list[tuple[int, Measurement]]:
        """(index, measurement) of those drawn on slice ``slice_index`` of ``plane``."""
        plane = Plane(plane)
        return [
            (n, m)
            for n, m in enumerate(self._items)
            if m.plane is plane and m.slice_index == slice_index
        ]

    # -- changes (each one undo step) ---------------------------------------------------------

    def reset(self, study: str | None, items: Iterable[Measurement] = ()) -> None:
        """Hold ``study``'s measurements, with no history (a study was opened or closed)."""
        self.study = study
        self._items = tuple(_checked(m) for m in items)
        self._history.clear()
        self._select(None)
        self.changed.emit()

    def add(self, measurement: Measurement) -> int:
        """Append a measurement and select it; returns its index."""
        self._change((*self._items, _checked(measurement)))
        self._select(len(self._items) - 1)
        return len(self._items) - 1

    def replace(self, index: int, measurement: Measurement) -> None:
        """Put an edited measurement (moved, resized) in the place of measurement ``index``."""
        items = list(self._items)
        items[self._checked_index(index)] = _checked(measurement)
        self._change(tuple(items))

    def remove(self, index: int) -> None:
        items = list(self._items)
        del items[self._checked_index(index)]
        self._select(None)
        self._change(tuple(items))

    def remove_selected(self) -> bool:
        """Delete the selected measurement; False when none is selected."""
        if self.selected is None:
            return False
        self.remove(self.selected)
        return True

    def clear(self) -> None:
        if self._items:
            self._select(None)
            self._change(())

    def select(self, index: int | None) -> None:
        self._select(None if index is None else self._checked_index(index))

    # -- history -------------------------------------------------------------------------------

    @property
    def can_undo(self) -> bool:
        return self._history.can_undo

    @property
    def can_redo(self) -> bool:
        return self._history.can_redo

    def undo(self) -> bool:
        """Take back the last change; False when there is none."""
        return self._restored(self._history.undo(self._put))

    def redo(self) -> bool:
        """Do again what undo took back; False when there is nothing to redo."""
        return self._restored(self._history.redo(self._put))

    # -- internals -----------------------------------------------------------------------------

    def _change(self, items: tuple[Measurement, ...]) -> None:
        self._history.push(self._items)
        self._items = items
        self.changed.emit()

    def _put(self, items: tuple[Measurement, ...]) -> tuple[Measurement, ...]:
        """Put ``items`` back; returns the list they replaced (the step that reverses it)."""
        before, self._items = self._items, items
        return before

    def _restored(self, moved: bool) -> bool:
        """Tell after an undo or redo (``moved``), once both stacks are up to date."""
        if not moved:
            return False
        if self.selected is not None and self.selected >= len(self._items):
            self._select(None)
        self.changed.emit()
        return True

    def _select(self, index: int | None) -> None:
        if index != self.selected:
            self.selected = index
            self.selection_changed.emit(index)

    def _checked_index(self, index: int) -> int:
        if not 0 <= int(index) < len(self._items):
            raise IndexError(
                f"Unable to use measurement {index!r} as there are {len(self._items)} of them"
            )
        return int(index)


def _checked(measurement: object) -> Measurement:
    if not isinstance(measurement, Measurement):
        raise TypeError(f"Unable to keep {type(measurement).__name__!r} as it is not a Measurement")
    return measurement
