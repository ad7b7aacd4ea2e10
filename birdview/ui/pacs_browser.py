"""`PacsBrowser`: find studies on a PACS, retrieve them into the local cache, send results back.

A thin window over `birdview.pacs`: every network call runs in a `PacsRunner` worker, and the
first series of a retrieval opens (through ``open_folder``) as soon as it has arrived. In
presenter mode the patient name and ID columns are hidden.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from birdview.pacs.cache import StudyCache
from birdview.pacs.client import StudyQuery
from birdview.pacs.connection import connect
from birdview.pacs.credentials import forget_secret, save_secret
from birdview.pacs.errors import PacsError, RetrieveCancelled
from birdview.pacs.settings import PacsServer, load_servers, with_name
from birdview.pacs.settings import save_servers as write_servers
from birdview.ui.pacs_server_form import CACHE_LIMIT_KEY, ServerForm
from birdview.ui.pacs_tables import PHI_COLUMNS, SERIES_COLUMNS, STUDY_COLUMNS, fill, make_table
from birdview.ui.pacs_tasks import PacsRunner

__all__ = ["PacsBrowser"]

logger = logging.getLogger(__name__)


class PacsBrowser(QWidget):
    """Saved servers, a search form, the study and series tables, retrieve and send."""

    def __init__(
        self,
        servers_path: str,
        cache: StudyCache,
        open_folder: Callable[[str], None],
        prepare_results: Callable[[], Callable[[], tuple[list[str], str]] | None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("PACS")
        self.servers_path, self.cache = servers_path, cache
        self._open_folder, self._prepare_results = open_folder, prepare_results
        self.presenter = False
        self.studies: list[dict[str, str]] = []
        self.series: list[dict[str, str]] = []
        self._opened_first = False
        self.runner = PacsRunner(self)
        self._build()
        self._wire()
        self._reload_servers()

    # -- building ---------------------------------------------------------------------------

    def _build(self) -> None:
        form = self.form = ServerForm()
        self.server_box, self.url_edit, self.ae_edit = form.server_box, form.url_edit, form.ae_edit
        self.auth_box, self.user_edit, self.tls_box = form.auth_box, form.user_edit, form.tls_box
        self.ca_edit, self.timeout_box, self.echo_button = (
            form.ca_edit,
            form.timeout_box,
            form.echo_button,
        )
        self.save_button, self.delete_button = form.save_button, form.delete_button
        self.password_button = form.password_button
        self.cache_box = QDoubleSpinBox()
        self.cache_box.setRange(0.001, 10000.0)
        self.cache_box.setDecimals(3)
        self.cache_box.setSuffix(" GB")
        self.cache_box.setValue(self.cache.limit_bytes / 1e9)
        self.cache_box.setToolTip(
            "Retrieved studies are kept up to this size; the least recently used go first"
        )

        self.search_edits = {
            key: QLineEdit() for key in ("patient_name", "patient_id", "date", "modality")
        }
        self.search_edits["date"].setPlaceholderText("20170101-20171231")
        self.search_button = QPushButton("Search")
        search = QFormLayout()
        row = QHBoxLayout()
        for key, label in zip(self.search_edits, ("Name", "ID", "Date", "Modality"), strict=True):
            row.addWidget(QLabel(label))
            row.addWidget(self.search_edits[key])
        row.addWidget(self.search_button)
        search.addRow(row)

        self.study_table = make_table([c[0] for c in STUDY_COLUMNS])
        self.series_table = make_table([c[0] for c in SERIES_COLUMNS])
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.study_table)
        split.addWidget(self.series_table)
        split.setSizes([260, 140])

        self.retrieve_button = QPushButton("Retrieve and open")
        self.cancel_button = QPushButton("Cancel")
        self.send_button = QPushButton("Send to PACS")
        self.send_button.setToolTip(
            "Send the open study's results: the SR, key images or the view as secondary "
            "captures, and the label overlay as a SEG"
        )
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m images")
        self.status = QLabel("")
        actions = QHBoxLayout()
        for widget in (self.retrieve_button, self.cancel_button, self.progress, self.send_button):
            actions.addWidget(widget)
        actions.addWidget(QLabel("Cache"))
        actions.addWidget(self.cache_box)

        layout = QVBoxLayout(self)
        layout.addWidget(self.form)
        layout.addLayout(search)
        layout.addWidget(split, 1)
        layout.addLayout(actions)
        layout.addWidget(self.status)
        self._set_busy(False)
        self.resize(1100, 640)

    def _wire(self) -> None:
        self.server_box.currentIndexChanged.connect(self._on_server_chosen)
        self.save_button.clicked.connect(self.save_server)
        self.delete_button.clicked.connect(self.delete_server)
        self.cache_box.editingFinished.connect(self._on_cache_limit)
        self.password_button.clicked.connect(self._ask_password)
        self.echo_button.clicked.connect(self.echo)
        self.search_button.clicked.connect(self.search)
        for edit in self.search_edits.values():
            edit.returnPressed.connect(self.search)
        self.study_table.itemSelectionChanged.connect(self._on_study_selected)
        self.retrieve_button.clicked.connect(self.retrieve)
        self.cancel_button.clicked.connect(self.runner.cancel)
        self.send_button.clicked.connect(self.send_results)
        self.runner.busy_changed.connect(self._set_busy)
        self.runner.progressed.connect(self._on_progress)
        self.runner.series_arrived.connect(self._on_series_arrived)
        self.runner.finished.connect(self._on_finished)
        self.runner.failed.connect(self._on_failed)

    # -- servers ----------------------------------------------------------------------------

    def server(self) -> PacsServer:
        """The server the form describes; ValueError says what is wrong with it."""
        return self.form.server()

    def save_server(self) -> None:
        """Add (or replace, by URL) the form's server in the saved list; no secret is saved."""
        server = self._server_or_say()
        if server is None:
            return
        name = server.name or server.url
        servers = [s for s in self._saved() if s.url != server.url]
        servers.append(with_name(server, name))
        write_servers(self.servers_path, servers)
        self._reload_servers(select=name)
        self.status.setText(f"Saved {name}")

    def _saved(self) -> list[PacsServer]:
        try:
            return load_servers(self.servers_path)
        except ValueError as exc:
            self.status.setText(str(exc))
            return []

    def _reload_servers(self, select: str = "") -> None:
        self.server_box.blockSignals(True)
        self.server_box.clear()
        for server in self._saved():
            self.server_box.addItem(server.name, server)
        self.server_box.blockSignals(False)
        index = self.server_box.findText(select) if select else 0
        if self.server_box.count():
            self.server_box.setCurrentIndex(max(index, 0))
            self._on_server_chosen(self.server_box.currentIndex())

    def _on_server_chosen(self, index: int) -> None:
        server = self.server_box.itemData(index)
        if server is not None:
            self.form.show_server(server)

    def delete_server(self) -> None:
        """Remove the chosen saved server, and its password or token from the keyring."""
        server = self.server_box.currentData()
        if server is None:
            self.status.setText("No saved server is chosen")
            return
        write_servers(self.servers_path, [s for s in self._saved() if s.name != server.name])
        try:
            if server.auth != "none":
                forget_secret(server)
        except PacsError as exc:
            self.status.setText(str(exc))
            return
        self._reload_servers()
        self.status.setText(f"Deleted {server.name}")

    def _on_cache_limit(self) -> None:
        """A new cache limit: saved in the settings and applied now."""
        gigabytes = self.cache_box.value()
        QSettings().setValue(CACHE_LIMIT_KEY, gigabytes)
        self.cache.limit_bytes = int(gigabytes * 1e9)
        study = self.selected_study()
        removed = self.cache.evict(keep=study["StudyInstanceUID"] if study else None)
        used = self.cache.total_bytes() / 1e9
        self.status.setText(
            f"Cache limit {gigabytes:g} GB: {used:.2f} GB used, {len(removed)} studies removed"
        )

    def _ask_password(self) -> None:
        server = self._server_or_say()
        if server is None or server.auth == "none":
            self.status.setText("Choose basic or bearer login first")
            return
        secret, ok = QInputDialog.getText(
            self, "PACS login", "Password or token:", QLineEdit.EchoMode.Password
        )
        if ok and secret:
            try:
                save_secret(server, secret)
                self.status.setText("Kept in the system keyring")
            except PacsError as exc:
                self.status.setText(str(exc))

    def _server_or_say(self) -> PacsServer | None:
        try:
            return self.server()
        except ValueError as exc:
            self.status.setText(str(exc))
            return None

    # -- calls -------------------------------------------------------------------------------

    def echo(self) -> None:
        self._call("echo", lambda client, job: client.echo())

    def search(self) -> None:
        query = StudyQuery(**{k: e.text().strip() for k, e in self.search_edits.items()})
        self._call("find", lambda client, job: client.find_studies(query))

    def retrieve(self) -> None:
        study = self.selected_study()
        if study is None:
            self.status.setText("Select a study first")
            return
        server = self._server_or_say()
        if server is None:
            return
        uid = study["StudyInstanceUID"]
        folder = str(self.cache.folder_for(uid))
        self._opened_first = False
        self.progress.setRange(0, int(study.get("NumberOfStudyRelatedInstances") or 0) or 1)
        self.progress.setValue(0)
        by_move = server.kind == "dimse" and server.retrieve_by == "move"

        def fetch(client, job):
            def series_done(series_uid: str) -> None:
                job.series_done(os.path.join(folder, series_uid))

            fetch_by = client.move if by_move else client.retrieve
            result = fetch_by(
                uid, folder, progress=job.progress, cancel=job.cancelled,
                on_series_done=series_done,
            )  # fmt: skip
            self.cache.evict(keep=uid)
            return result

        self._call("retrieve", fetch)

    def send_results(self) -> None:
        """Send the open study's results (see `PacsControls.prepare_results`): they are made
        into DICOM and sent in the worker, with progress."""
        build = self._prepare_results()
        if build is None:
            return

        def send(client, job):
            paths, summary = build()
            job.progress(0, len(paths))
            return summary, client.store(paths, job.progress)

        self._call("store", send)

    def selected_study(self) -> dict[str, str] | None:
        rows = self.study_table.selectionModel().selectedRows()
        return self.studies[rows[0].row()] if rows else None

    def _call(self, kind: str, work: Callable) -> None:
        server = self._server_or_say()
        if server is None:
            return
        self.status.setText(f"{kind.capitalize()}…")
        self.runner.run(kind, lambda job: work(connect(server), job))

    # -- answers -----------------------------------------------------------------------------

    def _on_finished(self, kind: str, result: object) -> None:
        if kind == "echo":
            self.status.setText("The server answers")
        elif kind == "find":
            self._show_studies(result)
        elif kind == "series":
            self._show_series(result)
        elif kind == "retrieve":
            self.status.setText(
                f"{result.total} images in the local cache ({result.received} retrieved, "
                f"{result.skipped} already there)"
            )
        elif kind == "store":
            summary, sent = result
            self.status.setText(f"Sent {summary}: {len(sent)} instance(s)")

    def _on_failed(self, kind: str, exc: object) -> None:
        if isinstance(exc, RetrieveCancelled):
            self.status.setText("Retrieval cancelled; what arrived is kept and will be reused")
        elif isinstance(exc, (PacsError, ValueError)):
            self.status.setText(str(exc))
        else:
            logger.warning("PACS %s failed: %s", kind, type(exc).__name__)
            self.status.setText(f"{kind} failed: {exc}")

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def _on_series_arrived(self, folder: str) -> None:
        if not self._opened_first:  # the first series opens while the rest arrive
            self._opened_first = True
            self._open_folder(folder)

    def _on_study_selected(self) -> None:
        study = self.selected_study()
        self.series_table.setRowCount(0)
        if study is not None and not self.runner.busy:
            uid = study["StudyInstanceUID"]
            self._call("series", lambda client, job: client.find_series(uid))

    def _show_studies(self, studies: list[dict[str, str]]) -> None:
        self.studies = list(studies)
        fill(self.study_table, self.studies, STUDY_COLUMNS)
        self.set_presenter(self.presenter)
        self.status.setText(f"{len(self.studies)} studies found")

    def _show_series(self, series: list[dict[str, str]]) -> None:
        self.series = list(series)
        fill(self.series_table, self.series, SERIES_COLUMNS)

    def set_presenter(self, on: bool) -> None:
        """Presenter mode: no patient name, ID, study date or accession number on screen."""
        self.presenter = bool(on)
        for column in PHI_COLUMNS:
            self.study_table.setColumnHidden(column, self.presenter)
        for key in ("patient_name", "patient_id", "date"):
            self.search_edits[key].setEchoMode(
                QLineEdit.EchoMode.Password if self.presenter else QLineEdit.EchoMode.Normal
            )

    def _set_busy(self, busy: bool) -> None:
        for button in (self.search_button, self.retrieve_button, self.echo_button):
            button.setEnabled(not busy)
        self.send_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)

    def closeEvent(self, event) -> None:  # noqa: N802
        self.runner.cancel()
        super().closeEvent(event)
