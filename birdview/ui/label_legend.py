"""`LabelLegend`: the open label map's legend — a colour swatch, the name and an on/off box per
label — with the layer's controls (show, fill or outline, opacity) and, for teaching, how the
model's boxes agree with the labels of the same name (IoU on the box's slice).

It observes the `LabelOverlay` and changes it only through its methods; model → widget
updates run with the widgets' signals blocked, so nothing echoes back.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSlider,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from birdview.core import geometry
from birdview.core.assistant import Assistant
from birdview.core.labels import agreement
from birdview.core.labels_overlay import LabelOverlay
from birdview.core.session import Session
from birdview.ui._observe import observe

__all__ = ["LabelLegend", "readable_name"]

_SWATCH_PX = 14


def readable_name(name: str) -> str:
    """ "kidney_right" → "kidney right": label files use underscores, people read spaces."""
    return name.replace("_", " ").strip()


class LabelLegend(QWidget):
    """The legend and controls of the label layer."""

    def __init__(
        self,
        overlay: LabelOverlay,
        session: Session,
        assistant: Assistant | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._overlay = overlay
        self._session = session
        self._assistant = assistant
        self._listed: object = False  # the label map the list shows (False: none built yet)
        self.source = QLabel("No segmentation open (File → Open segmentation…)")
        self.source.setWordWrap(True)
        self.shown = QCheckBox("Show labels")
        self.style_box = QComboBox()
        self.style_box.addItems(["Fill", "Outline"])
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setToolTip("Opacity of the filled labels")
        self.labels = QListWidget()
        self.labels.setWordWrap(True)  # long names wrap instead of being clipped
        self.labels.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.hovered = QLabel()  # the label under the mouse
        self.hovered.setWordWrap(True)
        self.agreement = QLabel()
        self.agreement.setWordWrap(True)
        self.agreement.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._layout()

        self.shown.toggled.connect(overlay.set_visible)
        self.style_box.currentIndexChanged.connect(lambda i: overlay.set_outline(i == 1))
        self.opacity.valueChanged.connect(lambda v: overlay.set_opacity(v / 100))
        self.labels.itemChanged.connect(self._on_item_changed)
        observe(self, overlay.events.all, self._on_overlay_changed)  # any field
        if assistant is not None:
            observe(self, assistant.events.revision, self._on_answers_changed)
        self._on_overlay_changed()

    def _layout(self) -> None:
        controls = QHBoxLayout()
        controls.addWidget(self.shown)
        controls.addWidget(self.style_box)
        controls.addWidget(QLabel("Opacity"))
        controls.addWidget(self.opacity, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.source)
        layout.addLayout(controls)
        layout.addWidget(self.labels, 1)
        layout.addWidget(self.hovered)
        layout.addWidget(self.agreement)

    # -- model -> widgets --------------------------------------------------------------------

    def _on_overlay_changed(self, *_: object) -> None:
        o = self._overlay
        with signals_blocked(self.shown), signals_blocked(self.style_box):
            self.shown.setChecked(o.visible)
            self.style_box.setCurrentIndex(1 if o.outline else 0)
        with signals_blocked(self.opacity):
            self.opacity.setValue(round(o.opacity * 100))
        self._fill_list()
        self._on_answers_changed()
        enabled = o.label_map is not None
        for widget in (self.shown, self.style_box, self.opacity, self.labels):
            widget.setEnabled(enabled)

    def _fill_list(self) -> None:
        label_map = self._overlay.label_map
        if label_map is self._listed:  # the same labels: only their on/off state
            self._sync_checks()
            return
        self._listed = label_map
        with signals_blocked(self.labels):
            self.labels.clear()
            if label_map is None:
                self.source.setText("No segmentation open (File → Open segmentation…)")
                return
            noun = "label" if len(label_map.classes) == 1 else "labels"
            lines = [f"<b>{escape(label_map.source)}</b> — {len(label_map.classes)} {noun}"]
            lines += [f"<i>{escape(note)}</i>" for note in label_map.notes]
            self.source.setText("<br>".join(lines))
            for item in label_map.classes:
                entry = QListWidgetItem(_swatch(item.colour), readable_name(item.name))
                entry.setData(Qt.ItemDataRole.UserRole, item.value)
                entry.setToolTip(f"{item.name} (value {item.value})")
                entry.setFlags(entry.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                shown = item.value not in self._overlay.hidden
                entry.setCheckState(Qt.CheckState.Checked if shown else Qt.CheckState.Unchecked)
                self.labels.addItem(entry)

    def show_hovered(self, name: str) -> None:
        """Name the label under the mouse ("" when there is none)."""
        text = f"Under the mouse: <b>{escape(readable_name(name))}</b>" if name else ""
        self.hovered.setText(text)

    def _sync_checks(self) -> None:
        with signals_blocked(self.labels):
            for row in range(self.labels.count()):
                entry = self.labels.item(row)
                shown = entry.data(Qt.ItemDataRole.UserRole) not in self._overlay.hidden
                entry.setCheckState(Qt.CheckState.Checked if shown else Qt.CheckState.Unchecked)

    def _on_answers_changed(self, *_: object) -> None:
        self.agreement.setText(self.agreement_text())
        self.agreement.setVisible(bool(self.agreement.text()))

    def agreement_text(self) -> str:
        """One line per model box whose label the label map holds: its IoU with that label's
        box on the same slice."""
        label_map, volume = self._overlay.label_map, self._session.volume
        if label_map is None or volume is None or self._assistant is None:
            return ""
        lines = []
        for placed in self._assistant.placed_boxes():
            box = placed.box
            found = agreement(label_map, box) if box.label else None
            if found is None:
                continue
            where = f"{box.plane.value} {geometry.slice_name(volume, box.plane, box.slice_index)}"
            name = readable_name(found.label.name)
            if found.label_box is None:
                lines.append(f"{name} ({where}): not in the label map on that slice")
            else:
                lines.append(f"{name} ({where}): IoU {found.iou:.2f} with the label's box")
        return "Model boxes vs labels:\n" + "\n".join(lines) if lines else ""

    # -- widgets -> model --------------------------------------------------------------------

    def _on_item_changed(self, entry: QListWidgetItem) -> None:
        value = entry.data(Qt.ItemDataRole.UserRole)
        self._overlay.set_shown(value, entry.checkState() == Qt.CheckState.Checked)


def _swatch(colour: tuple[int, int, int]) -> QIcon:
    pixmap = QPixmap(_SWATCH_PX, _SWATCH_PX)
    pixmap.fill(QColor(*colour))
    return QIcon(pixmap)
