"""`MaskSet`: the segmentation masks of the open study — named, coloured, editable, with
undo/redo — that the segment, propagate, brush and export features share.

Qt-free and observable (psygnal). Each `MaskEntry` holds a full-volume uint8 array (0/1) on the
study's grid, (slices, rows, cols) like `Volume.voxels`. Edits are recorded as patches (the
old values of the slice or region that changed), not as copies of the volume, so undo costs
what was painted, not 5 MB a stroke. Several edits can be grouped into one undo step with
`batch` (a whole propagation is taken back at once).

The set belongs to one study (`study`: a `Volume.identity`; `shape`: its grid); `reset`
starts another study's set with an empty history.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from psygnal import Signal

from birdview.core.geometry import Plane
from birdview.core.labels import RGB, default_colour
from birdview.core.masks import MaskMeasures, measure
from birdview.core.undo import UndoHistory
from birdview.core.volume import Volume

__all__ = ["MaskEntry", "MaskSet", "SOURCES", "plane_slicer"]

# Where a mask came from (shown in the panel, written in exports).
SOURCES = ("SAM box", "propagated", "from model box", "text prompt", "brush", "restored")
_MAX_UNDO = 100
MAX_MASKS = 255  # one uint8 label value each when the set is drawn or exported as a label map


@dataclass(eq=False)
class MaskEntry:
    """One named mask. ``data`` is uint8 0/1 on the study grid; change it through the set."""

    id: int
    name: str
    colour: RGB
    source: str
    data: np.ndarray
    visible: bool = True
    version: int = 0  # bumped on every data change (views and measures cache on it)
    _measures: tuple[int, MaskMeasures] | None = field(default=None, repr=False)

    def measures(self, volume: Volume) -> MaskMeasures:
        """mL, axial long/short axis and mean/SD inside the mask (cached per version)."""
        if self._measures is None or self._measures[0] != self.version:
            self._measures = (self.version, measure(self.data.astype(bool), volume))
        return self._measures[1]

    def cached_measures(self) -> MaskMeasures | None:
        """The measures of the current voxels if known (computed elsewhere, e.g. a thread)."""
        if self._measures is not None and self._measures[0] == self.version:
            return self._measures[1]
        return None

    def remember_measures(self, version: int, found: MaskMeasures) -> None:
        """Keep measures computed (off the GUI thread) for ``version`` of the voxels."""
        if version == self.version:
            self._measures = (version, found)

    @property
    def voxels(self) -> int:
        return int(np.count_nonzero(self.data))


def plane_slicer(plane: Plane, index: int, shape: tuple[int, int, int]) -> tuple:
    """The index of slice ``index`` of ``plane`` in a (k, j, i) array, in the orientation
    `geometry.extract_slice` shows it (coronal and sagittal: k reversed, head up).

    Raises:
        IndexError: ``index`` is outside the plane's slices.
    """
    plane = Plane(plane)
    count = {Plane.AXIAL: shape[0], Plane.CORONAL: shape[1], Plane.SAGITTAL: shape[2]}[plane]
    if not 0 <= int(index) < count:
        raise IndexError(f"Unable to use {plane.value} slice {index} of 0..{count - 1}")
    index = int(index)
    if plane is Plane.AXIAL:
        return (index, slice(None), slice(None))
    if plane is Plane.CORONAL:
        return (slice(None, None, -1), index, slice(None))
    return (slice(None, None, -1), slice(None), index)


@dataclass
class _Patch:
    """The values ``entry.data[where]`` had before an edit."""

    entry: MaskEntry
    where: tuple
    old: np.ndarray


@dataclass
class _Entries:
    """The list of entries before a structural change (add, remove, rename, recolour)."""

    entries: tuple[MaskEntry, ...]
    names: tuple[tuple[str, RGB], ...]


class MaskSet:
    """The masks of one study, one of them selected (or none).

    Signals:
        changed(): masks were added, removed, renamed, recoloured, shown or hidden.
        data_changed(entry id): a mask's voxels changed (also after undo/redo).
        selection_changed(id or None)
        history_changed(): `can_undo` / `can_redo` may have changed.
    """

    changed = Signal()
    data_changed = Signal(int)
    selection_changed = Signal(object)
    history_changed = Signal()

    def __init__(self) -> None:
        self.study: str | None = None
        self.shape: tuple[int, int, int] | None = None
        self._entries: tuple[MaskEntry, ...] = ()
        self._ids = itertools.count(1)
        self._history = UndoHistory(_MAX_UNDO)  # steps: lists of records (`_apply`)
        self._batch: list | None = None
        self.selected: int | None = None

    # -- reading --------------------------------------------------------------------------------

    @property
    def entries(self) -> tuple[MaskEntry, ...]:
        return self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[MaskEntry]:
        return iter(self._entries)

    def get(self, mask_id: int) -> MaskEntry:
        """Raises: KeyError: no mask has that id."""
        for entry in self._entries:
            if entry.id == mask_id:
                return entry
        raise KeyError(f"No mask {mask_id!r} in this study's masks")

    @property
    def selected_entry(self) -> MaskEntry | None:
        return None if self.selected is None else self.get(self.selected)

    def label_slice(self, plane: Plane, index: int) -> np.ndarray:
        """Slice ``index`` of ``plane`` with each visible mask's voxels set to its position + 1
        (later masks drawn over earlier ones): what a label layer colours."""
        shape = self._require_shape()
        where = plane_slicer(plane, index, shape)
        out: np.ndarray | None = None
        for n, entry in enumerate(self._entries, start=1):
            if not entry.visible:
                continue
            part = entry.data[where]
            if out is None:
                out = np.zeros(part.shape, np.uint8)
            out[part != 0] = n
        if out is None:
            out = np.zeros(np.zeros(shape, bool)[where].shape, np.uint8)
        return out

    def label_volume(self) -> np.ndarray:
        """All masks as one uint8 label array (value = position + 1, later over earlier)."""
        out = np.zeros(self._require_shape(), np.uint8)
        for n, entry in enumerate(self._entries, start=1):
            out[entry.data != 0] = n
        return out

    # -- changes (each one undo step unless inside `batch`) ------------------------------------

    def reset(
        self,
        study: str | None,
        shape: tuple[int, int, int] | None,
        entries: Iterable[MaskEntry] = (),
    ) -> None:
        """Hold ``study``'s masks (grid ``shape``), with no history."""
        self.study = study
        self.shape = None if shape is None else tuple(int(n) for n in shape)
        self._entries = tuple(self._checked(e) for e in entries)
        top = max((e.id for e in self._entries), default=0)
        self._ids = itertools.count(top + 1)
        self._history.clear()
        self._batch = None
        self.selected = None
        self.changed.emit()
        self.selection_changed.emit(None)
        self.history_changed.emit()

    def add(
        self,
        name: str,
        source: str,
        data: np.ndarray | None = None,
        colour: RGB | None = None,
    ) -> int:
        """A new mask (empty unless ``data`` is given: copied, non-zero is in), selected;
        returns its id.

        Raises:
            ValueError: no study is open, the data is not on its grid, or the set is full.
        """
        shape = self._require_shape()
        if len(self._entries) >= MAX_MASKS:
            raise ValueError(f"Unable to add a mask as a study holds at most {MAX_MASKS}")
        array = np.zeros(shape, np.uint8)
        if data is not None:
            array[...] = self._grid(data) != 0
        mask_id = next(self._ids)
        colour = tuple(colour) if colour is not None else default_colour(mask_id)
        entry = MaskEntry(mask_id, str(name) or f"mask {mask_id}", colour, str(source), array)
        self._structure((*self._entries, entry))
        self.select(mask_id)
        return mask_id

    def remove(self, mask_id: int) -> None:
        entry = self.get(mask_id)
        if self.selected == mask_id:
            self.select(None)
        self._structure(tuple(e for e in self._entries if e is not entry))

    def rename(self, mask_id: int, name: str) -> None:
        entry = self.get(mask_id)
        if str(name) and str(name) != entry.name:
            self._structure(self._entries, lambda: setattr(entry, "name", str(name)))

    def set_colour(self, mask_id: int, colour: RGB) -> None:
        entry = self.get(mask_id)
        self._structure(self._entries, lambda: setattr(entry, "colour", tuple(colour)))

    def set_visible(self, mask_id: int, visible: bool) -> None:
        """Show or hide a mask (display only: no undo step)."""
        entry = self.get(mask_id)
        if entry.visible != bool(visible):
            entry.visible = bool(visible)
            self.changed.emit()

    def select(self, mask_id: int | None) -> None:
        if mask_id is not None:
            self.get(mask_id)
        if mask_id != self.selected:
            self.selected = mask_id
            self.selection_changed.emit(mask_id)

    def put_slice(self, mask_id: int, plane: Plane, index: int, mask2d: np.ndarray) -> None:
        """Replace slice ``index`` of ``plane`` of the mask with ``mask2d`` (as
        `geometry.extract_slice` shows that slice; non-zero is in).

        Raises:
            IndexError, ValueError: no such slice, or ``mask2d`` has another shape.
        """
        entry = self.get(mask_id)
        where = plane_slicer(plane, index, self._require_shape())
        self._edit(entry, where, np.asarray(mask2d) != 0)

    def paint(self, mask_id: int, plane: Plane, index: int, pixels: np.ndarray, value: bool) -> int:
        """Set the ``pixels`` (a 2D bool array of the slice) of the mask to ``value`` (brush:
        True, eraser: False); returns how many voxels changed (0: no undo step)."""
        entry = self.get(mask_id)
        where = plane_slicer(plane, index, self._require_shape())
        current = entry.data[where]
        pixels = np.asarray(pixels, dtype=bool)
        if pixels.shape != current.shape:
            raise ValueError(
                f"Unable to paint a {pixels.shape!r} stroke on a {current.shape!r} slice"
            )
        new = np.where(pixels, np.uint8(bool(value)), current)
        changed = int(np.count_nonzero(new != current))
        if changed:
            self._edit(entry, where, new)
        return changed

    def set_data(self, mask_id: int, data: np.ndarray) -> None:
        """Replace the whole mask (e.g. a 3D mask from a text-prompted model)."""
        entry = self.get(mask_id)
        self._edit(entry, (slice(None),), self._grid(data) != 0)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group the changes made inside into one undo step (nested batches join the outer)."""
        if self._batch is not None:
            yield
            return
        self._batch = []
        try:
            yield
        finally:
            step, self._batch = self._batch, None
            if step:
                self._push(step)

    # -- history -------------------------------------------------------------------------------

    @property
    def can_undo(self) -> bool:
        return self._history.can_undo

    @property
    def can_redo(self) -> bool:
        return self._history.can_redo

    def undo(self) -> bool:
        """Take back the last change; False when there is none (or inside a batch)."""
        return self._batch is None and self._done(self._history.undo(self._apply_step))

    def redo(self) -> bool:
        """Do again what undo took back; False when there is nothing to redo."""
        return self._batch is None and self._done(self._history.redo(self._apply_step))

    # -- internals -----------------------------------------------------------------------------

    def _apply_step(self, step: list) -> list:
        return [self._apply(record) for record in reversed(step)]

    def _done(self, moved: bool) -> bool:
        """After an undo or redo (``moved``): drop a selection whose mask went."""
        if not moved:
            return False
        if self.selected is not None and all(e.id != self.selected for e in self._entries):
            self.select(None)
        self.history_changed.emit()
        return True

    def _apply(self, record: _Patch | _Entries) -> _Patch | _Entries:
        """Put ``record`` back; returns the record that undoes that."""
        if isinstance(record, _Patch):
            current = record.entry.data[record.where].copy()
            record.entry.data[record.where] = record.old
            self._touched(record.entry)
            return _Patch(record.entry, record.where, current)
        now = self._snapshot()
        for entry, (name, colour) in zip(record.entries, record.names, strict=True):
            entry.name, entry.colour = name, colour
        self._entries = record.entries
        self.changed.emit()
        return now

    def _edit(self, entry: MaskEntry, where: tuple, new: np.ndarray) -> None:
        old = entry.data[where].copy()
        entry.data[where] = new
        self._record(_Patch(entry, where, old))
        self._touched(entry)

    def _structure(self, entries: tuple[MaskEntry, ...], change=None) -> None:
        self._record(self._snapshot())
        if change is not None:
            change()
        self._entries = entries
        self.changed.emit()

    def _snapshot(self) -> _Entries:
        return _Entries(self._entries, tuple((e.name, e.colour) for e in self._entries))

    def _record(self, record: _Patch | _Entries) -> None:
        if self._batch is not None:
            self._batch.append(record)
        else:
            self._push([record])

    def _push(self, step: list) -> None:
        self._history.push(step)
        self.history_changed.emit()

    def _touched(self, entry: MaskEntry) -> None:
        entry.version += 1
        if any(e is entry for e in self._entries):
            self.data_changed.emit(entry.id)

    def _require_shape(self) -> tuple[int, int, int]:
        if self.shape is None:
            raise ValueError("Unable to hold masks as no study is open")
        return self.shape

    def _grid(self, data: np.ndarray) -> np.ndarray:
        data = np.asarray(data)
        if data.shape != self._require_shape():
            raise ValueError(
                f"Unable to use a mask of shape {data.shape!r} on a study of shape {self.shape!r}"
            )
        return data

    def _checked(self, entry: MaskEntry) -> MaskEntry:
        entry.data = np.asarray(self._grid(entry.data) != 0, dtype=np.uint8)
        return entry
