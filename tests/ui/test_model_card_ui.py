"""The model card in the app: the model panel says what the loaded model was trained on, and
the chat warns beside an answer when the study or the structure lies outside it.

The real window, the real worker and the bundled demo model, whose card says it was trained
on the sample CT only (CT, abdomen, 12 structures); the other study is the dcm4che wrist MR.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from birdview.core.assistant import ModelState
from birdview.core.model_card import read_card
from birdview.core.resources import demo_model_dir
from birdview.core.session_store import load_record, session_path
from birdview.ui.model_panel import describe_card
from tests.conftest import REPO, shared
from tests.ui.test_refer_ground import last_turn, wait_for
from tests.ui.test_study_isolation import new_window as _new_window
from tests.ui.test_study_isolation import open_study as _open

CT = REPO / "resources" / "samples" / "totalseg_ct"
MODALITY_WARNING = "This model was trained on CT only; this study is MR"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("card_ui")


def _load_demo(window) -> None:
    window.model_panel.model_edit.setText(str(demo_model_dir()))
    window.model_panel.precision_box.setCurrentText("fp32")
    window.model_panel.load()
    wait_for(lambda: window.assistant.model.state in ("ready", "error"), 120)
    assert window.assistant.model.ready, window.assistant.model.message


def _ask(window, question: str):
    window.chat_panel.input.setText(question)
    window.chat_panel.input.returnPressed.emit()  # Enter
    turn = last_turn(window)
    assert turn.state == "done", turn.error
    return turn


def _transcript(window) -> str:
    window.chat_panel._render()  # the throttled render, now
    return window.chat_panel.transcript.toPlainText()


def test_the_demo_card_is_shown_and_an_mr_study_is_warned_about(qapp, folder):
    window = _new_window(folder)
    try:
        _open(window, shared("dcm4che_mr"))
        _load_demo(window)
        assert window.assistant.model.card == read_card(demo_model_dir())
        panel = window.model_panel.state_label.text()
        assert "<b>BirdView demo model</b>: trained on CT · abdomen · axial slice" in panel

        turn = _ask(window, "where is the liver?")
        assert len(turn.warnings) == 1 and turn.warnings[0].startswith(MODALITY_WARNING)
        assert MODALITY_WARNING in _transcript(window)

        turn = _ask(window, "where is the wrist?")
        assert turn.warnings[0].startswith(MODALITY_WARNING)
        assert turn.warnings[1].startswith("'wrist' is not among the structures this model")

        window.controller.save_now()
        path = session_path(window.session.volume.identity, folder / "sessions")
        saved = load_record(path).turns
        assert [len(t.warnings) for t in saved] == [1, 2]

        _open(window, CT)  # the study the demo was trained on
        turn = _ask(window, "where is the liver?")
        assert turn.warnings == ()
        assert "trained on CT only" not in _transcript(window)
        turn = _ask(window, "where is the wrist?")  # CT, but not a structure it learnt
        assert [w[:8] for w in turn.warnings] == ["'wrist' "]
    finally:
        window.close()


def test_warnings_come_back_with_the_saved_session(qapp, folder):
    """Runs after the test above, on its saved sessions: a restart shows the MR's warnings."""
    window = _new_window(folder)
    try:
        _open(window, shared("dcm4che_mr"))
        wait_for(lambda: len(window.assistant.turns) == 2)
        assert window.assistant.turns[0].warnings[0].startswith(MODALITY_WARNING)
        assert MODALITY_WARNING in _transcript(window)
    finally:
        window.close()


def test_the_panel_explains_a_missing_or_unreadable_card():
    none = describe_card(ModelState("ready", model_dir="/m"))
    assert "No model card" in none
    problem = "Unable to read '/m/birdview.json' as card.name is missing <script>"
    text = describe_card(ModelState("ready", model_dir="/m", card_problem=problem))
    assert "card.name is missing &lt;script&gt;" in text and "without the card's warnings" in text
