"""Teaching: the study's masks against the open label map (the bundled reference).

- In the Labels dock, under the legend: Dice and IoU of each mask against its reference label,
  in 3D and on the slice in the main view.
- *Compare box, mask and reference* (Measure menu): a small window with three pictures of the
  main view's slice — the model's box, the mask, the reference label — each with its bounding
  box, and the IoU of every pair of boxes.

Numbers come from `birdview.core.mask_compare`; this module only observes the mask set, the
label overlay, the session and the assistant, and draws.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QAction, QImage, QPixmap
from PySide6.QtWidgets import QDialog, QGridLayout, QLabel, QVBoxLayout, QWidget

from birdview.core import geometry
from birdview.core.assistant import Assistant
from birdview.core.box import Box
from birdview.core.display import apply_window
from birdview.core.labels import names_match
from birdview.core.labels_overlay import LabelOverlay
from birdview.core.mask_compare import BoxAgreement, box_agreement, compare_mask, slice_of
from birdview.core.session import Session
from birdview.ui._observe import observe

__all__ = ["MaskCompare", "MaskCompareWindow"]

_THUMB_PX = 300
MODEL_COLOUR, REFERENCE_COLOUR = (255, 64, 64), (64, 220, 64)


class MaskCompare(QObject):
    """The Dice/IoU lines under the label legend and the compare window's action.

    Args:
        masks: the window's `MaskSet` (``entries``, ``selected_entry()``, ``study``).
        overlay: the label layer's `LabelOverlay` (its label map is the reference).
        legend: the `LabelLegend` (the lines go under it).
    """

    def __init__(
        self,
        parent: QWidget,
        session: Session,
        masks: Any,
        overlay: LabelOverlay,
        assistant: Assistant | None,
        legend: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._parent, self._session, self._masks = parent, session, masks
        self._overlay, self._assistant = overlay, assistant
        self._cache: dict[tuple, Any] = {}  # (mask id, version, label map id) → Comparison
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        if legend is not None and legend.layout() is not None:
            legend.layout().addWidget(self.summary)
        self.window: MaskCompareWindow | None = None
        self.action = QAction("Compare box, mask and reference…", self)
        self.action.setToolTip("The model's box, the mask and the reference label side by side")
        self.action.triggered.connect(lambda *_: self.show_window())
        self._timer = QTimer(self, singleShot=True, interval=150)  # a slider drag: one update
        self._timer.timeout.connect(self.refresh)
        for signal in (masks.changed, masks.data_changed, masks.selection_changed):
            observe(self, signal, self._later)
        observe(self, overlay.events.all, self._later)
        observe(self, session.events.cursor_ijk, self._later)
        observe(self, session.events.main_plane, self._later)
        if assistant is not None:
            observe(self, assistant.events.revision, self._later)
        self.refresh()

    def _later(self, *_: object) -> None:
        self._timer.start()

    # -- numbers ---------------------------------------------------------------------------

    def comparison(self, entry: Any):
        """The cached `Comparison` of a mask entry with the open label map (or None)."""
        labels, volume = self._overlay.label_map, self._session.volume
        if labels is None or volume is None or not entry.data.any():
            return None
        key = (entry.id, entry.version, id(labels), entry.name)
        if key not in self._cache:
            if labels.study_identity not in ("", volume.identity):
                return None
            self._cache = {k: v for k, v in self._cache.items() if k[0] != entry.id}
            self._cache[key] = compare_mask(entry.data, entry.name, labels, volume.identity)
        return self._cache[key]

    def summary_text(self) -> str:
        """One line per mask: Dice/IoU with its reference in 3D and on the main view's slice."""
        volume = self._session.volume
        if (
            volume is None
            or self._overlay.label_map is None
            or self._masks.study != volume.identity
        ):
            return ""
        plane = self._session.main_plane
        index = self._session.slice_index(plane)
        where = f"{plane.value} {geometry.slice_name(volume, plane, index)}"
        lines = []
        for entry in self._masks.entries:
            found = self.comparison(entry)
            if found is None:
                continue
            here = found.on_slice(plane, index, entry.data, self._overlay.label_map)
            how = "" if found.matched_by == "name" else " (by overlap)"
            lines.append(
                f"<b>{escape(entry.name)}</b> vs {escape(found.label.name)}{how}: "
                f"Dice {found.volume.dice:.3f}, IoU {found.volume.iou:.3f} (3D); "
                f"{where}: {_pair(here.dice, here.iou)}"
            )
        return "Masks vs labels:<br>" + "<br>".join(lines) if lines else ""

    def refresh(self) -> None:
        text = self.summary_text()
        self.summary.setText(text)
        self.summary.setVisible(bool(text))
        if self.window is not None and self.window.isVisible():
            self.window.show_slice(*self.pictures())

    # -- the compare window ----------------------------------------------------------------

    def show_window(self) -> MaskCompareWindow:
        if self.window is None:
            self.window = MaskCompareWindow(self._parent)
        self.window.show_slice(*self.pictures())
        self.window.show()
        self.window.raise_()
        return self.window

    def pictures(self) -> tuple[list[np.ndarray], str]:
        """(three RGB pictures of the main view's slice, the caption)."""
        volume, window = self._session.volume, self._session.window
        if volume is None or window is None:
            return [], "No study is open."
        plane = self._session.main_plane
        index = self._session.slice_index(plane)
        grey = apply_window(geometry.extract_slice(volume, plane, index), window)
        grey = np.repeat(grey[..., None], 3, axis=2) if grey.ndim == 2 else grey
        entry = self._chosen_mask()
        labels = self._overlay.label_map
        found = self.comparison(entry) if entry is not None else None
        if entry is None or found is None or labels is None:
            return [grey, grey, grey], _missing(entry, labels)
        mask2d = slice_of(entry.data, plane, index).astype(bool)
        reference2d = slice_of(np.asarray(labels.volume.voxels), plane, index) == found.label.value
        model = self._model_box(plane, index, found.label.name)
        boxes = box_agreement(model, mask2d, reference2d, plane, index)
        here = found.on_slice(plane, index, entry.data, labels)
        pictures = [
            _draw(grey, None, MODEL_COLOUR, boxes.model),
            _draw(grey, mask2d, entry.colour, boxes.mask),
            _draw(grey, reference2d, REFERENCE_COLOUR, boxes.reference),
        ]
        where = f"{plane.value} {geometry.slice_name(volume, plane, index)}"
        caption = (
            f"<b>{escape(entry.name)}</b> vs reference <b>{escape(found.label.name)}</b> on "
            f"{where} — mask vs reference: {_pair(here.dice, here.iou)} on this slice, "
            f"Dice {found.volume.dice:.3f}, IoU {found.volume.iou:.3f} in 3D.<br>"
            + _box_line(boxes)
        )
        return pictures, caption

    def _chosen_mask(self):
        entry = self._masks.selected_entry
        if entry is None or not entry.data.any():
            entry = next((e for e in self._masks.entries if e.data.any()), None)
        return entry

    def _model_box(self, plane, index: int, name: str) -> Box | None:
        """The model's box on this slice: the one named like the reference, else the only
        one, else the box the user drew."""
        if self._assistant is None:
            return None
        here = [p.box for p in self._assistant.boxes_on(plane, index)]
        named = [b for b in here if b.label and names_match(b.label, name)]
        if named or len(here) == 1:
            return (named or here)[0]
        user = self._assistant.user_box
        if user is not None and user.plane is plane and user.slice_index == index:
            return user
        return None


class MaskCompareWindow(QDialog):
    """Three pictures side by side and a caption."""

    TITLES = ("Model box", "Mask", "Reference label")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compare: model box, mask, reference")
        self.pictures = [QLabel() for _ in self.TITLES]
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        grid = QGridLayout()
        for n, (title, picture) in enumerate(zip(self.TITLES, self.pictures, strict=True)):
            heading = QLabel(f"<b>{title}</b>")
            heading.setAlignment(Qt.AlignmentFlag.AlignCenter)
            picture.setFixedSize(_THUMB_PX, _THUMB_PX)
            picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
            grid.addWidget(heading, 0, n)
            grid.addWidget(picture, 1, n)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.caption)

    def show_slice(self, images: list[np.ndarray], caption: str) -> None:
        for picture, image in zip(self.pictures, images or [None] * 3, strict=True):
            picture.setPixmap(_pixmap(image) if image is not None else QPixmap())
        self.caption.setText(caption)


# -- drawing ------------------------------------------------------------------------------------


def _draw(grey: np.ndarray, mask: np.ndarray | None, colour, box: Box | None) -> np.ndarray:
    """The slice with a mask filled at half opacity and a box outlined, 2 px."""
    out = grey.astype(np.float32).copy()
    rgb = np.asarray(colour, np.float32)
    if mask is not None:
        out[mask] = 0.5 * out[mask] + 0.5 * rgb
    if box is not None:
        rows, cols = out.shape[:2]
        x1, y1 = max(int(box.x1_px), 0), max(int(box.y1_px), 0)
        x2, y2 = min(int(math.ceil(box.x2_px)), cols), min(int(math.ceil(box.y2_px)), rows)
        out[y1:y2, x1 : x1 + 2] = out[y1:y2, max(x2 - 2, 0) : x2] = rgb
        out[y1 : y1 + 2, x1:x2] = out[max(y2 - 2, 0) : y2, x1:x2] = rgb
    return out.astype(np.uint8)


def _pixmap(image: np.ndarray) -> QPixmap:
    image = np.ascontiguousarray(image, dtype=np.uint8)
    rows, cols = image.shape[:2]
    qimage = QImage(image.data, cols, rows, 3 * cols, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(qimage).scaled(
        _THUMB_PX, _THUMB_PX, Qt.AspectRatioMode.KeepAspectRatio,
        Qt.TransformationMode.SmoothTransformation,
    )  # fmt: skip


def _pair(dice: float, iou: float) -> str:
    if math.isnan(dice):
        return "neither is on this slice"
    return f"Dice {dice:.3f}, IoU {iou:.3f}"


def _box_line(boxes: BoxAgreement) -> str:
    pairs = (("model", "reference"), ("mask", "reference"), ("model", "mask"))
    names = {"model": "model box", "mask": "mask's box", "reference": "reference's box"}
    parts = [
        f"{names[a]} vs {names[b]} IoU {boxes.iou(a, b):.2f}"
        for a, b in pairs
        if not math.isnan(boxes.iou(a, b))
    ]
    if boxes.model is None:
        parts.append("no model box on this slice (ask the model to ground it, or draw one)")
    return "Boxes: " + "; ".join(parts) if parts else ""


def _missing(entry, labels) -> str:
    if entry is None:
        return "No mask to compare: segment a structure first (Measure → Segment box)."
    if labels is None:
        return "No reference: open the label map (File → Show bundled labels)."
    return f"The label map has no structure that the mask {escape(entry.name)!s} touches."
