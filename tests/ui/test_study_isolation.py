"""One study's conversation never reaches another study: its chat, its session file, its DICOM
SR — also across a restart, and also for an answer still streaming when the study changes.

The real window, the real worker process and the tiny model taught answers about the bundled
CT (`tests.ui.taught`); study A is the bundled CT (blank UIDs: known by its content), study B
the dcm4che wrist MR (known by its Series Instance UID).
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from PySide6.QtCore import QSettings

from birdview.core import geometry
from birdview.core.box import Box
from birdview.core.io import load, scan
from birdview.core.session_store import load_record, session_path
from birdview.ui.settings import Settings
from tests.conftest import REPO, SHARED_DATA
from tests.ui.taught import TaughtModel
from tests.ui.test_refer_ground import last_turn, show_slice, wait_for

CT = REPO / "resources" / "samples" / "totalseg_ct"
MR = SHARED_DATA / "dcm4che_mr"
CT_QUESTION = "Where is the liver located in the image?"
MR_QUESTION = "What is this?"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("isolation")


def new_window(folder: Path):
    from birdview.ui.main_window import MainWindow

    settings = Settings(QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat))
    window = MainWindow(settings, session_dir=str(folder / "sessions"), autoload_model=False)
    window.resize(1400, 900)
    window.show()
    return window


def open_study(window, path: Path) -> None:
    before = window.session.volume
    window.open_path(str(path))
    wait_for(lambda: window.session.volume is not None and window.session.volume is not before)
    wait_for(lambda: not window.loader.busy)


def load_model(window, taught: TaughtModel) -> None:
    window.model_panel.model_edit.setText(str(taught.model_dir))
    window.model_panel.precision_box.setCurrentText("fp32")
    window.model_panel.load()
    wait_for(lambda: window.assistant.model.state in ("ready", "error"), 120)
    assert window.assistant.model.ready, window.assistant.model.message


def questions(window) -> list[str]:
    return [turn.question for turn in window.assistant.turns]


def saved_questions(window, folder: Path) -> list[str]:
    window.controller.save_now()
    path = session_path(window.session.volume.identity, folder / "sessions")
    return [turn.question for turn in load_record(path).turns]


def sr_text_and_references(window, path: Path) -> tuple[str, set[str]]:
    """Every text value of the exported SR, and every image it references."""
    window.exporter.ask_path = lambda *args: str(path)
    assert window.exporter.dicom_sr(), "the SR export failed"
    texts: list[str] = []
    references: set[str] = set()

    def walk(items) -> None:
        for item in items:
            if "TextValue" in item:
                texts.append(str(item.TextValue))
            for ref in item.get("ReferencedSOPSequence", []):
                references.add(str(ref.ReferencedSOPInstanceUID))
            walk(item.get("ContentSequence", []))

    walk(pydicom.dcmread(path).ContentSequence)
    return "\n".join(texts), references


def instance_uids(folder: Path) -> set[str]:
    return {
        str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
        for p in folder.glob("*.dcm")
    }


def test_each_study_keeps_only_its_own_conversation(qapp, taught_model, folder, tmp_path):
    window = new_window(folder)
    try:
        open_study(window, CT)
        load_model(window, taught_model)
        show_slice(window, taught_model.liver_slice)
        window.chat_panel.input.setText("liver")
        window.chat_panel.find_button.click()
        assert last_turn(window).state == "done"
        assert questions(window) == [CT_QUESTION]

        open_study(window, MR)  # B: the CT's conversation is neither shown nor saved here
        assert questions(window) == []
        wait_for(lambda: CT_QUESTION not in window.chat_panel.transcript.toPlainText())
        plane = window.session.main_plane
        index = window.session.slice_index(plane)
        window.assistant.set_user_box(Box(plane, index, 60, 60, 160, 140, label="drawn"))
        wait_for(window.chat_panel.what_button.isEnabled)
        window.chat_panel.what_button.click()
        assert last_turn(window).state == "done"
        assert questions(window) == [MR_QUESTION]
        assert saved_questions(window, folder) == [MR_QUESTION]
        mr_sr, mr_refs = sr_text_and_references(window, tmp_path / "mr.dcm")

        open_study(window, CT)  # A again: only A's conversation comes back
        assert questions(window) == [CT_QUESTION]
        wait_for(lambda: CT_QUESTION in window.chat_panel.transcript.toPlainText())
        assert MR_QUESTION not in window.chat_panel.transcript.toPlainText()
        assert saved_questions(window, folder) == [CT_QUESTION]
        ct_sr, ct_refs = sr_text_and_references(window, tmp_path / "ct.dcm")
    finally:
        window.close()

    assert CT_QUESTION in ct_sr and MR_QUESTION not in ct_sr
    assert MR_QUESTION in mr_sr and CT_QUESTION not in mr_sr
    mr_images = instance_uids(MR)
    assert mr_refs and mr_refs <= mr_images
    assert ct_refs and not ct_refs & mr_images

    restarted = new_window(folder)  # a restart: each study's file holds its own turns
    try:
        open_study(restarted, MR)
        assert questions(restarted) == [MR_QUESTION]
        assert restarted.assistant.user_box is not None
        open_study(restarted, CT)
        assert questions(restarted) == [CT_QUESTION]
        assert restarted.assistant.turns[0].boxes  # with its box
        assert restarted.assistant.user_box is None  # the MR's drawn box stayed with the MR
    finally:
        restarted.close()


def test_an_answer_streaming_when_the_study_changes_is_dropped(qapp, taught_model, tmp_path):
    (entry,) = scan(MR).entries
    raw = load(entry)
    mr = geometry.to_canonical(raw)
    window = new_window(tmp_path)
    try:
        open_study(window, CT)
        load_model(window, taught_model)
        before = questions(window)
        window.chat_panel.input.setText("colon")
        window.chat_panel.sweep_button.click()
        wait_for(lambda: window.assistant.turns[-1].state == "streaming")
        # What the loader does when a study has been read, at a moment the answer is still
        # on its way.
        window.session.open_volume(mr, entry, geometry.acquisition_plane(raw))
        assert questions(window) == []
        # A question about B is answered after the worker has dealt with A's sweep (one
        # request at a time), so anything of the sweep would have arrived by now.
        plane = window.session.main_plane
        window.assistant.set_user_box(Box(plane, 5, 60, 60, 160, 140, label="drawn"))
        wait_for(window.chat_panel.what_button.isEnabled)
        window.chat_panel.what_button.click()
        assert last_turn(window).state == "done"
        assert questions(window) == [MR_QUESTION]
        assert all(not turn.is_sweep for turn in window.assistant.turns)
        wait_for(lambda: MR_QUESTION in window.chat_panel.transcript.toPlainText())
        assert "colon" not in window.chat_panel.transcript.toPlainText()

        open_study(window, CT)
        assert questions(window) == before == []  # the sweep was dropped, not saved as A's
    finally:
        window.close()
