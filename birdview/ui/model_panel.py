"""`ModelPanel`: choose a checkpoint (and adapter), precision and device; see what loaded.

The choice is remembered in the settings and loaded again at the next start. Loading happens in
the worker process, so the panel only shows its progress: the device actually used, memory in
use and the model family once it is ready.
"""

from __future__ import annotations

import html
import os

from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from birdview.core import families
from birdview.core.assistant import Assistant, ModelState
from birdview.inference.protocol import WorkerConfig
from birdview.ui._observe import observe
from birdview.ui.assistant_controller import AssistantController
from birdview.ui.fit_text import WrappedLabel
from birdview.ui.settings import Settings

__all__ = ["DEVICES", "PRECISIONS", "ModelPanel", "describe_card", "describe_model"]

PRECISIONS = ("auto", "nf4", "int8", "bf16", "fp32")
DEVICES = ("auto", "cpu", "cuda")

_HOW_TO = (
    "No model configured. Choose a checkpoint folder ("
    + ", ".join(f.title for f in families.all_families() if not f.remote_code)
    + ", or one made with <code>birdview-train fit</code>) and press Load; see the README."
)


_DEMO = (
    "<b>Demo model</b> (bundled): a demo trained on the data it shows — every slice of this "
    "sample CT — so it shows the workflow with answers it remembers; not a medical model, "
    "wrong on any other study. Choose a checkpoint above for a real one.<br>"
)


def _family_title(key: str) -> str:
    """The family as people know it ("Gemma 3 (MedGemma)"), from its registry key."""
    return families.get(key).title if key in families.keys() else f"family {key}"


def describe_model(model: ModelState) -> str:
    """One paragraph for people about the model's state (no patient data)."""
    if model.state == "none":
        return _HOW_TO
    name = os.path.basename(model.model_dir.rstrip("/\\")) or model.model_dir
    if model.state == "loading":
        extra = f" ({model.message})" if model.message else ""
        return f"Loading <b>{name}</b>{extra}…"
    if model.state == "error":
        return (
            f"<span style='color:#d04040'>Could not load <b>{name}</b>: {model.message}.</span> "
            "Check the folder and the settings, then press Load to try again."
        )
    memory = f"{model.memory_bytes / 2**20:.0f} MiB" if model.memory_bytes else "unknown"
    notices = "".join(f"<br><i>{n}</i>" for n in model.notices)
    return (
        f"<b>{name}</b> ready<br>{html.escape(_family_title(model.family))} · {model.precision} on "
        f"<b>{model.device}</b> · memory {memory}{notices}{describe_card(model)}"
    )


def describe_card(model: ModelState) -> str:
    """What the model card says it was trained on (the chat warns outside it), or why there
    is nothing to say; escaped, since the card is text from a file."""
    if model.card_problem:
        return (
            f"<br><span style='color:#c08000'>{html.escape(model.card_problem)}. The model "
            "answers, but without the card's warnings.</span>"
        )
    card = model.card
    if card is None:
        return (
            "<br><i>No model card: nothing is known about what it was trained on, so answers "
            "come without warnings about it.</i>"
        )
    trained = card.trained_on.summary()
    said = f"trained on {trained}" if trained else "its card does not say what it was trained on"
    about = f"<br>{html.escape(card.description)}" if card.description else ""
    return f"<br><b>{html.escape(card.name)}</b>: {html.escape(said)}{about}"


class ModelPanel(QWidget):
    """The model dock's widget."""

    def __init__(
        self,
        assistant: Assistant,
        controller: AssistantController,
        settings: Settings,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._assistant = assistant
        self._controller = controller
        self._settings = settings
        self._demo_dir = ""

        self.model_edit = QLineEdit(settings.model_dir())
        self.model_edit.setPlaceholderText("checkpoint folder")
        self.adapter_edit = QLineEdit(settings.adapter_dir())
        self.adapter_edit.setPlaceholderText("optional LoRA adapter folder")
        self.precision_box = QComboBox()
        self.precision_box.addItems(PRECISIONS)
        self.precision_box.setCurrentText(settings.model_precision())
        self.device_box = QComboBox()
        self.device_box.addItems(DEVICES)
        self.device_box.setCurrentText(settings.model_device())
        self.load_button = QPushButton("Load")
        self.load_button.clicked.connect(self.load)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # busy indicator: loading reports no steps
        self.progress.setMaximumHeight(8)
        self.progress.setTextVisible(False)
        self.state_label = WrappedLabel()  # its last line is never cut off by the dock

        form = QFormLayout()
        form.addRow("Model", self._with_browse(self.model_edit, "Choose a checkpoint folder"))
        form.addRow("Adapter", self._with_browse(self.adapter_edit, "Choose an adapter folder"))
        row = QHBoxLayout()
        row.addWidget(QLabel("Precision"))
        row.addWidget(self.precision_box)
        row.addWidget(QLabel("Device"))
        row.addWidget(self.device_box)
        row.addStretch(1)
        row.addWidget(self.load_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addWidget(self.progress)
        layout.addWidget(self.state_label)
        layout.addStretch(1)
        observe(self, assistant.events.model, self._on_model_changed)
        self._on_model_changed()

    def config(self) -> WorkerConfig | None:
        """The configuration the fields describe (None without a model folder)."""
        model_dir = self.model_edit.text().strip()
        if not model_dir:
            return None
        adapter = self.adapter_edit.text().strip() or None
        return WorkerConfig(
            model_dir,
            adapter_dir=adapter,
            precision=self.precision_box.currentText(),
            device=self.device_box.currentText(),
        )

    def load(self) -> None:
        """Remember the fields and load that model."""
        config = self.config()
        if config is None:
            self.state_label.setText(_HOW_TO)
            return
        self._settings.set_model(
            config.model_dir, config.adapter_dir or "", config.precision, config.device
        )
        self._controller.load_model(config)

    def load_demo(self, folder: str) -> None:
        """Load the bundled demo checkpoint without remembering it: the next start loads the
        demo again only while no checkpoint is configured."""
        self._demo_dir = str(folder)
        self._controller.load_model(WorkerConfig(self._demo_dir))

    def _with_browse(self, edit: QLineEdit, title: str) -> QWidget:
        button = QToolButton()
        button.setText("…")
        button.setToolTip(title)
        button.clicked.connect(lambda *_: self._browse(edit, title))
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit, 1)
        row.addWidget(button)
        return box

    def _browse(self, edit: QLineEdit, title: str) -> None:
        folder = QFileDialog.getExistingDirectory(self, title, edit.text() or os.getcwd())
        if folder:
            edit.setText(folder)

    def _on_model_changed(self, *_: object) -> None:
        model = self._assistant.model
        demo = bool(self._demo_dir) and model.model_dir == self._demo_dir
        self.state_label.setText((_DEMO if demo else "") + describe_model(model))
        self.progress.setVisible(model.state == "loading")
        self.load_button.setEnabled(model.state != "loading")
