"""`observe`: a failing observer is reported and the others still see the change."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject

from birdview.core.session import Session
from birdview.ui._observe import observe
from tests.ui.helpers import load_nifti_canonical


class Panel(QObject):
    def __init__(self, session: Session, fail: bool) -> None:
        super().__init__()
        self.fail = fail
        self.seen: list[object] = []
        observe(self, session.events.volume, self._on_volume_changed)

    def _on_volume_changed(self, volume) -> None:
        if self.fail:
            raise RuntimeError("this panel is broken")
        self.seen.append(volume)


def test_one_failing_observer_does_not_hide_a_study_from_the_others(qapp, monkeypatch):
    reported = []
    monkeypatch.setattr(sys, "excepthook", lambda *info: reported.append(info[1]))
    session = Session()
    broken, view = Panel(session, fail=True), Panel(session, fail=False)
    volume, entry, plane = load_nifti_canonical()
    session.open_volume(volume, entry, plane)
    assert view.seen == [volume]
    assert [str(e) for e in reported] == ["this panel is broken"]
    assert broken.seen == []


def test_an_observer_stops_with_its_qt_object(qapp):
    session = Session()
    panel = Panel(session, fail=False)
    panel.destroyed.emit()  # what Qt sends when the C++ object goes
    volume, entry, plane = load_nifti_canonical()
    session.open_volume(volume, entry, plane)
    assert panel.seen == []
