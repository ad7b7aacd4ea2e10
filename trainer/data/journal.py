"""Where a build writes until it is complete: a hidden folder beside ``--out`` with a journal.

``.<out>.partial/`` holds ``images/``, ``records.jsonl`` (one line per finished unit, in plan
order), ``build_state.json`` (what is being built) and ``staging/<unit>/`` (images of units
a worker is still doing). A unit is committed in this order:

1. its images are checked against ``images/`` (two images of one name are refused);
2. its line is appended to the journal and flushed;
3. its images are moved from ``staging/<unit>/`` into ``images/``.

A build killed at any point (SIGKILL, power) is resumed by the same command: the journal is
cut after its last complete line, the moves of that line's unit are finished, other staging
folders are dropped and the build goes on from the next unit. A build of other sources or
settings into the same ``--out`` starts afresh; one running at the same time is refused (the
folder is locked while a build writes to it). The folder takes ``--out``'s name only once
complete, so nothing half-done is ever under that name.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from trainer.data.units import UnitOutput

__all__ = ["JOURNAL", "WorkFolder", "check_out"]

logger = logging.getLogger(__name__)

JOURNAL = "records.jsonl"
_STATE = "build_state.json"
_STAGING = "staging"
_LOCK = ".lock"


def check_out(out: Path) -> None:
    """Refuse an ``out`` that is a file or a folder that is not empty."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"Unable to build into '{out}' as it is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise ValueError(f"Unable to build into '{out}' as it is not empty")


class WorkFolder:
    """The hidden folder a build (or a merge) writes into, locked while it does."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.path = out.absolute().parent / f".{out.name}.partial"
        self.images = self.path / "images"
        self.journal = self.path / JOURNAL
        self.staging = self.path / _STAGING
        self._lock_fd: int | None = None

    def open(self, state: dict[str, Any], first_unit: int, *, resume: bool = True) -> int:
        """Lock the folder and make it hold ``state``; the first unit still to do (after
        those a killed build of the same state finished, unless ``resume`` is False)."""
        state = json.loads(json.dumps(state, sort_keys=True))  # as it reads back
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock()
        state_file = self.path / _STATE
        same = state_file.is_file() and _read_state(state_file) == state
        if resume and same and self.journal.is_file():
            done = self._resume(first_unit)
            if done > first_unit:
                logger.info("resuming the build in %s after %d units", self.path, done - first_unit)
            return done
        self._clear()
        self.images.mkdir()
        self.journal.touch()
        state_file.write_text(json.dumps(state, sort_keys=True), encoding="utf-8")
        return first_unit

    def _lock(self) -> None:
        fd = os.open(self.path / _LOCK, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ValueError(
                f"Unable to build into '{self.out}' as another build is writing to "
                f"'{self.path}' now"
            ) from None
        self._lock_fd = fd

    def _clear(self) -> None:
        """Everything but the lock: a partial build of another state is of no use."""
        for entry in self.path.iterdir():
            if entry.name == _LOCK:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def _resume(self, first_unit: int) -> int:
        expected, good = first_unit, 0
        with open(self.journal, "rb") as lines:
            for line in lines:
                try:
                    unit = json.loads(line) if line.endswith(b"\n") else None
                except ValueError:
                    unit = None
                if not isinstance(unit, dict) or unit.get("unit") != expected:
                    break
                expected, good = expected + 1, good + len(line)
        os.truncate(self.journal, good)
        if expected > first_unit:  # its line is written: finish moving its images
            self._move_staged(expected - 1, replace=True)
        if self.staging.is_dir():
            shutil.rmtree(self.staging)
        return expected

    def commit(self, output: UnitOutput) -> None:
        """Journal a finished unit and move its images into place (see the module doc)."""
        for record in output.records:
            name = record["facts"]["name"]
            if (self.images / name).exists():
                raise ValueError(f"Unable to build as two images are both named {name!r}")
        line = {
            "unit": output.index,
            "source": output.source,
            "records": output.records,
            "skipped": output.skipped,
            "notes": output.notes,
        }
        with open(self.journal, "a", encoding="utf-8") as journal:
            journal.write(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n")
        self._move_staged(output.index, replace=False)

    def _move_staged(self, index: int, *, replace: bool) -> None:
        folder = self.staging / str(index)
        if not folder.is_dir():
            return
        for file in sorted(folder.iterdir()):
            target = self.images / file.name
            if replace or not target.exists():
                os.replace(file, target)
        shutil.rmtree(folder)

    def complete(self, keep: tuple[str, ...] = ()) -> None:
        """Drop the build's bookkeeping (but the files in ``keep``) and give the folder
        ``out``'s name."""
        for name in (_STATE, JOURNAL, _STAGING):
            entry = self.path / name
            if name in keep or not entry.exists():
                continue
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        (self.path / _LOCK).unlink()
        if self.out.is_dir():
            self.out.rmdir()  # empty (checked before the build); a folder is not renamed over
        os.rename(self.path, self.out)
        self.release()

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def discard(self) -> None:
        """A build that failed leaves nothing behind."""
        shutil.rmtree(self.path, ignore_errors=True)
        self.release()


def _read_state(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
