"""`ServerForm`: the PACS browser's server fields — URL, AE titles, login, timeout, TLS, and how
a DICOM server's studies are retrieved (C-GET, or C-MOVE to BirdView's storage SCP)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from birdview.pacs.settings import AUTH_KINDS, DEFAULT_AE, RETRIEVE_KINDS, PacsServer, parse_url

__all__ = ["CACHE_LIMIT_KEY", "ServerForm"]

RETRIEVE_LABELS = {"get": "C-GET", "move": "C-MOVE"}
CACHE_LIMIT_KEY = "pacs/cache_limit_gb"  # the local cache's size limit, in GB (QSettings)


class ServerForm(QWidget):
    """The fields of one server; `server()` reads them, `show_server()` fills them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.server_box = QComboBox()
        self.url_edit = QLineEdit()
        self.url_edit.setPlaceholderText("dicom://AE@host:port  or  http://host:port/dicom-web")
        self.ae_edit = QLineEdit(DEFAULT_AE)
        self.auth_box = QComboBox()
        self.auth_box.addItems(AUTH_KINDS)
        self.user_edit = QLineEdit()
        self.tls_box = QCheckBox("DICOM TLS")
        self.ca_edit = QLineEdit()
        self.ca_edit.setPlaceholderText("CA file (empty: the system's trust store)")
        self.timeout_box = QSpinBox()
        self.timeout_box.setRange(1, 600)
        self.timeout_box.setValue(30)
        self.timeout_box.setSuffix(" s")
        self.retrieve_box = QComboBox()
        for kind in RETRIEVE_KINDS:
            self.retrieve_box.addItem(RETRIEVE_LABELS[kind], kind)
        self.retrieve_box.setToolTip(
            "DICOM servers: C-GET brings the images over this connection; C-MOVE has the "
            "server send them to BirdView's storage port (the server must know our AE title "
            "at this host and port)"
        )
        self.storage_port_box = QSpinBox()
        self.storage_port_box.setRange(1, 65535)
        self.storage_port_box.setValue(11113)
        self.move_ae_edit = QLineEdit()
        self.move_ae_edit.setPlaceholderText("move destination (empty: the calling AE)")
        self.save_button = QPushButton("Save server")
        self.delete_button = QPushButton("Delete server")
        self.password_button = QPushButton("Password…")
        self.echo_button = QPushButton("Test")
        self._lay_out()
        self.retrieve_box.currentIndexChanged.connect(self._on_retrieve_changed)
        self._on_retrieve_changed()

    def _lay_out(self) -> None:
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        rows = [
            [("Server", self.server_box), ("URL", self.url_edit), ("Calling AE", self.ae_edit)],
            [("Login", self.auth_box), ("User", self.user_edit)],
            [("Timeout", self.timeout_box)],
            [
                ("Retrieve by", self.retrieve_box),
                ("Storage port", self.storage_port_box),
                ("Move AE", self.move_ae_edit),
            ],
        ]
        for row, cells in enumerate(rows):
            for col, (label, widget) in enumerate(cells):
                grid.addWidget(QLabel(label), row, 2 * col)
                grid.addWidget(widget, row, 2 * col + 1)
        grid.setColumnStretch(3, 1)
        grid.addWidget(self.tls_box, 2, 2)
        grid.addWidget(self.ca_edit, 2, 3, 1, 3)
        buttons = QHBoxLayout()
        for button in (self.password_button, self.save_button, self.delete_button):
            buttons.addWidget(button)
        buttons.addWidget(self.echo_button)
        grid.addLayout(buttons, 1, 4, 1, 2)

    def _on_retrieve_changed(self, *_: object) -> None:
        moving = self.retrieve_box.currentData() == "move"
        self.storage_port_box.setEnabled(moving)
        self.move_ae_edit.setEnabled(moving)

    def server(self) -> PacsServer:
        """The server the fields describe; ValueError says what is wrong with it."""
        return parse_url(
            self.url_edit.text(),
            calling_ae=self.ae_edit.text().strip() or DEFAULT_AE,
            auth=self.auth_box.currentText(),
            username=self.user_edit.text().strip(),
            timeout=float(self.timeout_box.value()),
            tls=self.tls_box.isChecked(),
            ca_file=self.ca_edit.text().strip(),
            name=self.server_box.currentText() if self.server_box.currentIndex() >= 0 else "",
            retrieve_by=self.retrieve_box.currentData(),
            storage_port=self.storage_port_box.value(),
            move_ae=self.move_ae_edit.text().strip(),
        )

    def show_server(self, server: PacsServer) -> None:
        self.url_edit.setText(server.url)
        self.ae_edit.setText(server.calling_ae)
        self.auth_box.setCurrentText(server.auth)
        self.user_edit.setText(server.username)
        self.timeout_box.setValue(round(server.timeout))
        self.tls_box.setChecked(server.tls and server.kind == "dimse")
        self.ca_edit.setText(server.ca_file)
        self.retrieve_box.setCurrentIndex(max(0, self.retrieve_box.findData(server.retrieve_by)))
        self.storage_port_box.setValue(server.storage_port)
        self.move_ae_edit.setText(server.move_ae)
