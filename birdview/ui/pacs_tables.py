"""The PACS browser's study and series tables: their columns, and filling them."""

from __future__ import annotations

from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

__all__ = ["PHI_COLUMNS", "SERIES_COLUMNS", "STUDY_COLUMNS", "fill", "make_table"]

STUDY_COLUMNS = (
    ("Patient", "PatientName"),
    ("Patient ID", "PatientID"),
    ("Date", "StudyDate"),
    ("Modalities", "ModalitiesInStudy"),
    ("Accession", "AccessionNumber"),
    ("Description", "StudyDescription"),
    ("Series", "NumberOfStudyRelatedSeries"),
    ("Images", "NumberOfStudyRelatedInstances"),
)
# Hidden in presenter mode: name, ID, the study date and the accession number all point to
# one patient's visit (HIPAA counts dates and record numbers as identifiers).
PHI_COLUMNS = (0, 1, 2, 4)
SERIES_COLUMNS = (
    ("No.", "SeriesNumber"),
    ("Modality", "Modality"),
    ("Description", "SeriesDescription"),
    ("Images", "NumberOfSeriesRelatedInstances"),
)


def make_table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().hide()
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def fill(table: QTableWidget, rows: list[dict[str, str]], columns) -> None:
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, (_, key) in enumerate(columns):
            table.setItem(r, c, QTableWidgetItem(row.get(key, "").replace("^", " ")))
