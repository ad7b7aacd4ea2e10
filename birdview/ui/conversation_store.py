"""`ConversationStore`: the open study's conversation kept in its own session file.

Changes are saved a moment after they stop (atomically, through `birdview.core.session_store`),
and at once before another study opens; opening a study brings its saved conversation back. A
file that cannot be read, or that belongs to another study, is set aside and never shown.

A conversation that became empty (cleared, its last box deleted) is saved empty when the study
has a session file, so the cleared answers do not come back; a study that never had a
conversation gets no file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer

from birdview.core import session_store
from birdview.core.assistant import Assistant
from birdview.core.session import Session
from birdview.core.study_files import set_aside
from birdview.core.volume import Volume
from birdview.ui._observe import observe

__all__ = ["ConversationStore"]

logger = logging.getLogger(__name__)

_AUTOSAVE_DELAY_MS = 400


class ConversationStore(QObject):
    """Saves and restores the assistant's conversation for the session's volume; what it has
    to tell the user (a restore, a failed save) goes to ``report``."""

    def __init__(
        self,
        session: Session,
        assistant: Assistant,
        session_dir: str | os.PathLike | None,
        report: Callable[[str], object],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.assistant = assistant
        self.session_dir = Path(session_dir) if session_dir is not None else None
        self._report = report
        self._created_at = ""
        self._has_file = False  # the open study has a session file (restored or written)
        self._autosave = QTimer(self)
        self._autosave.setSingleShot(True)
        self._autosave.setInterval(_AUTOSAVE_DELAY_MS)
        self._autosave.timeout.connect(self.save_now)
        # Answers, their edits (clear, delete a box) and hidden boxes are all kept: any change
        # of them is saved. A streamed answer restarts the timer; only finished turns are kept.
        observe(self, assistant.events.turns, self.schedule_save)
        observe(self, assistant.events.visibility, self.schedule_save)

    def schedule_save(self, *_: object) -> None:
        self._autosave.start()

    def save_now(self) -> None:
        """Write the conversation to its own study's session file now (atomically), if it has
        anything to keep, or if it was emptied and the file still holds what was there."""
        self._autosave.stop()
        assistant = self.assistant
        if self.session_dir is None or assistant.study is None:
            return
        record = assistant.to_record(created_at=self._created_at)
        if not (record.turns or record.user_boxes or self._has_file):
            return  # nothing kept yet (a question still on its way is not saved)
        self._created_at = record.created_at
        try:
            session_store.save_session(record, self.session_dir)
            self._has_file = True
        except (OSError, ValueError) as exc:
            logger.warning("autosave failed: %s", type(exc).__name__)
            text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._report(f"The session could not be saved: {text}")

    def restore(self) -> None:
        """Bring back the saved conversation of the study just opened. A file that cannot be
        read, or that is not this study's, is set aside and the study opens with an empty
        chat; this runs inside the volume signal, so it must not raise."""
        self._created_at = ""
        self._has_file = False
        volume = self.session.volume
        if volume is None or self.session_dir is None:
            return
        self._set_aside_version_1(volume)
        path = session_store.session_path(volume.identity, self.session_dir)
        try:
            record = session_store.load_session(volume.identity, self.session_dir)
            if record is not None:
                self.assistant.restore(record, volume)
        except (OSError, ValueError) as exc:
            self._set_aside(path, exc)
            return
        if record is not None:
            self._has_file = True
            self._created_at = record.created_at
            count = len(record.turns)
            if count or record.user_boxes:  # a cleared conversation is nothing to announce
                self._report(f"Restored the session of this study ({count} questions)")
        self._autosave.stop()  # opening (clear, restore) changed nothing worth writing back

    def _set_aside(self, path: Path, problem: Exception) -> None:
        try:
            kept = set_aside(path)
        except OSError as exc:
            logger.warning("could not set aside a damaged session: %s", type(exc).__name__)
            self._report(f"The saved session could not be read and not be set aside: {exc}")
            return
        logger.warning("session set aside: %s", type(problem).__name__)
        self._report(
            f"The saved session could not be restored ({problem}); it was kept as "
            f"{kept.name} and the study opens with an empty conversation"
        )

    def _set_aside_version_1(self, volume: Volume) -> None:
        """Sessions of BirdView's first release were named after `Volume.short_id` and could
        hold another study's conversation: such a file is renamed, never shown."""
        old = self.session_dir / f"session-{volume.short_id}.json"
        if old.is_file():
            self._set_aside(old, ValueError("it was saved by an older BirdView"))
