"""File → Export from the real window: the save dialog's folder, and exports that carry every
answer (refer ones too), the model and the study, with normal file permissions."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pydicom
from PIL import Image

from birdview.core.assistant import SWEEP_TASK, ModelState
from birdview.core.box import Box
from birdview.core.geometry import Plane
from tests.conftest import REPO
from tests.core.test_exports import dsrdump, text_of
from tests.ui.helpers import CT_NIFTI, open_and_wait

SAMPLE_CT = REPO / "resources" / "samples" / "totalseg_ct"
SAMPLE_MR = REPO / "resources" / "samples" / "dcm4che_mr"
CHECKPOINT = "c0ffee00" * 8
REFER_ANSWER = "Vertebral body – lumbar (L1), 40 × 30 mm"


class Dialog:
    """Stands in for the save dialog: records where it opened, answers a path in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.opened_in: list[Path] = []

    def __call__(self, title: str, default: str, file_filter: str) -> str:
        self.opened_in.append(Path(default).parent)
        return str(self.folder / Path(default).name)


def converse(window) -> None:
    """A ground answer (Qwen2.5-VL JSON markup), a refer answer about a drawn box and a sweep,
    as the controller records them when the worker replies."""
    assistant, volume = window.assistant, window.session.volume
    assistant.set_model(
        ModelState("ready", "/models/bird-tiny", "qwen2_5_vl", "fp32", checkpoint_sha256=CHECKPOINT)
    )
    liver = Box("axial", 10, 100, 120, 250, 300, label="liver")
    turn = assistant.begin("Where is the liver?", task="VG", plane=Plane.AXIAL, slice_index=10)
    raw = '```json\n[{"bbox_2d": [100, 120, 250, 300], "label": "liver"}]\n```'
    assistant.finish(turn.turn_id, answer=raw, boxes=[liver])
    drawn = Box("axial", 10, 60, 60, 160, 140, label="drawn")
    assistant.set_user_box(drawn)
    turn = assistant.begin("What is this?", task="RO", plane=Plane.AXIAL, slice_index=10,
                           region=drawn)  # fmt: skip
    assistant.finish(turn.turn_id, answer=f"<ref>{REFER_ANSWER}</ref>")
    turn = assistant.begin("colon", task=SWEEP_TASK, plane=Plane.AXIAL)
    boxes = [Box("axial", k, 200, 200, 260, 280, label="colon") for k in range(3, 8)]
    assistant.finish_sweep(turn.turn_id, volume, boxes)


def test_the_save_dialog_opens_in_the_study_folder_then_the_last_used(
    qtbot, make_main_window, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # where the app was started: no place for a patient's export
    window = make_main_window()
    assert window.exporter.start_folder() == Path.home()  # no study open yet
    open_and_wait(qtbot, window, SAMPLE_CT)
    converse(window)
    chosen = tmp_path / "teaching"
    chosen.mkdir()
    dialog = Dialog(chosen)
    window.exporter.ask_path = dialog
    assert window.exporter.json()
    assert window.exporter.png()
    assert dialog.opened_in == [SAMPLE_CT, chosen]
    assert window.settings.export_directory() == str(chosen)

    again = make_main_window()  # remembered across windows (and runs)
    open_and_wait(qtbot, again, SAMPLE_MR)
    again.exporter.ask_path = dialog
    assert again.exporter.dicom_sr() is None  # nothing asked about the MR: nothing to write
    turn = again.assistant.begin("Describe the image", task="MII", plane=Plane.CORONAL)
    again.assistant.finish(turn.turn_id, answer="A coronal MR of the wrist.")
    assert again.exporter.dicom_sr()
    assert dialog.opened_in[-1] == chosen
    shutil.rmtree(chosen)  # the folder is gone: back to the study's
    assert again.exporter.start_folder() == SAMPLE_MR


def test_window_exports_hold_every_answer_the_model_and_the_study(
    qtbot, make_main_window, tmp_path
):
    window = make_main_window()
    open_and_wait(qtbot, window, SAMPLE_CT)
    converse(window)
    identity = window.session.volume.identity
    window.exporter.ask_path = Dialog(tmp_path)
    old = os.umask(0o022)
    try:
        exporter = window.exporter
        png, found, report = exporter.png(), exporter.json(), exporter.dicom_sr()
    finally:
        os.umask(old)
    for path in (png, found, report):
        assert path and stat.S_IMODE(os.stat(path).st_mode) == 0o644

    data = json.loads(Path(found).read_text(encoding="utf-8"))
    assert [t["task"] for t in data["turns"]] == ["VG", "RO", SWEEP_TASK]
    assert data["turns"][1]["answer"] == REFER_ANSWER
    assert data["turns"][1]["region"]["label"] == "drawn"
    assert data["model"]["checkpoint_sha256"] == CHECKPOINT and data["study_identity"] == identity

    chunks = Image.open(png).text
    assert json.loads(chunks["birdview"])["study_identity"] == identity
    assert "not a diagnosis" in chunks["Disclaimer"]

    dump = dsrdump(report)
    assert f'"{REFER_ANSWER}"' in dump and "bbox_2d" not in dump
    ds = pydicom.dcmread(report)
    # The ground answer was only a box: it reads as its label, never as its markup.
    assert text_of(ds, "ANSWER")[:2] == ["liver", REFER_ANSWER]
    assert text_of(ds, "STUDYIDENTITY") == [identity]
    assert text_of(ds, "111003", "DCM")[0] == f"sha256:{CHECKPOINT}"
    assert "Exported DICOM SR" in window.status.currentMessage()


def test_an_sr_of_a_nifti_study_is_refused_with_a_message(qtbot, make_main_window, tmp_path):
    window = make_main_window()
    open_and_wait(qtbot, window, CT_NIFTI)
    turn = window.assistant.begin("Describe the image", task="MII", plane=Plane.AXIAL)
    window.assistant.finish(turn.turn_id, answer="An axial CT.")
    out = tmp_path / "out"
    out.mkdir()
    window.exporter.ask_path = Dialog(out)
    assert window.exporter.dicom_sr() is None
    assert window.reporter.dialog is not None
    assert "the study is not DICOM" in window.reporter.dialog.informativeText()
    assert list(out.iterdir()) == []
    assert window.exporter.json()  # JSON and PNG work for any study
