"""`birdview` with no arguments: the bundled sample CT opens and the bundled demo model loads in
the real worker and answers; a configured checkpoint is always the one loaded, even when it
fails, and the demo never replaces it."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QSettings

from birdview.core.geometry import Plane
from birdview.core.resources import demo_model_dir, sample_ct_dir
from birdview.ui.settings import Settings
from tests.ui.test_refer_ground import last_turn, wait_for

LIVER = 5  # TotalSegmentator's value for the liver (classes.json)


def _settings(folder) -> Settings:
    return Settings(QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat))


def _liver_edges(slice_index: int) -> tuple[float, float, float, float]:
    from birdview.core import geometry, io

    labels_file = sample_ct_dir().parent / "totalseg_ct_labels" / "example_seg_dicom.nii.gz"
    (entry,) = io.scan(labels_file).entries
    labels = np.asarray(geometry.to_canonical(io.load(entry)).voxels)
    rows, cols = np.nonzero(labels[slice_index] == LIVER)
    return float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1)


def _iou(a, b) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(width, 0) * max(height, 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def test_no_path_opens_the_sample_with_the_demo_model_that_finds_the_liver(qapp, tmp_path):
    from birdview.ui.app import open_window

    assert demo_model_dir() is not None, "resources/demo_model is missing"
    settings = _settings(tmp_path)
    window = open_window(None, settings=settings, session_dir=str(tmp_path / "sessions"))
    try:
        wait_for(lambda: window.session.volume is not None)
        wait_for(lambda: window.assistant.model.state in ("ready", "error"), 120)
        assert window.assistant.model.ready, window.assistant.model.message
        assert window.assistant.model.model_dir == str(demo_model_dir())
        panel = window.model_panel.state_label.text()
        assert "not a medical model" in panel and "trained on the data it shows" in panel
        assert settings.model_dir() == ""  # the demo is not remembered as the user's choice

        shown = window.session.slice_index(Plane.AXIAL)
        window.chat_panel.input.setText("where is the liver?")
        window.chat_panel.input.returnPressed.emit()  # Enter
        turn = last_turn(window)
        assert turn.state == "done", turn.error
        assert turn.boxes, turn.answer
        box = turn.boxes[0]
        assert box.slice_index == shown
        assert _iou(box.edges_px, _liver_edges(shown)) > 0.5, (box.edges_px, turn.answer)
    finally:
        window.close()


def test_a_configured_checkpoint_is_loaded_and_never_replaced_by_the_demo(qapp, tmp_path):
    from birdview.ui.main_window import MainWindow

    settings = _settings(tmp_path)
    missing = str(tmp_path / "my-checkpoint")
    settings.set_model(missing, "", "auto", "cpu")
    window = MainWindow(
        settings, session_dir=str(tmp_path / "sessions"), demo_model=str(demo_model_dir())
    )
    window.show()
    try:
        wait_for(lambda: window.assistant.model.state == "error", 120)
        assert window.assistant.model.model_dir == missing
        assert "my-checkpoint" in window.model_panel.state_label.text()
        # the bundled demo's banner and name (the folder's path may hold "demo": a temp dir)
        said = window.model_panel.state_label.text().replace(missing, "").lower()
        assert "demo" not in said
        assert settings.model_dir() == missing
    finally:
        window.close()


@pytest.mark.parametrize("configured", [False, True])
def test_resources_are_found_in_the_checkout_and_by_override(monkeypatch, tmp_path, configured):
    if configured:
        (tmp_path / "samples" / "totalseg_ct").mkdir(parents=True)
        monkeypatch.setenv("BIRDVIEW_RESOURCES", str(tmp_path))
        assert sample_ct_dir() == tmp_path / "samples" / "totalseg_ct"
        assert demo_model_dir() is None  # no config.json there
    else:
        assert (sample_ct_dir() / "ATTRIBUTION.md").is_file()
        assert (demo_model_dir() / "model.safetensors").is_file()
