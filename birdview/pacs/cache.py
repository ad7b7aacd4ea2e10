"""A local folder of retrieved studies with a size limit; the least recently used go first."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from birdview.pacs.files import safe_uid

logger = logging.getLogger(__name__)
_STAMP = ".last-used"


class StudyCache:
    """``folder_for(study_uid)`` is where a study is retrieved to; reopening it is instant."""

    def __init__(self, root: str | os.PathLike, limit_bytes: int) -> None:
        self.root = Path(root)
        self.limit_bytes = int(limit_bytes)

    def folder_for(self, study_uid: str) -> Path:
        """The study's folder, created and marked as just used."""
        folder = self.root / safe_uid(study_uid)
        folder.mkdir(parents=True, exist_ok=True)
        self.touch(study_uid)
        return folder

    def touch(self, study_uid: str) -> None:
        stamp = self.root / safe_uid(study_uid) / _STAMP
        # A stamp file, not the folder's mtime: retrieving into a folder must not count as use.
        stamp.write_text(f"{time.time_ns()}", encoding="ascii")

    def studies(self) -> list[tuple[str, int, int]]:
        """(study UID, last used ns, bytes) for every cached study, least recent first."""
        rows = []
        if not self.root.is_dir():
            return rows
        for folder in self.root.iterdir():
            if folder.is_dir():
                rows.append((folder.name, _last_used(folder), _size(folder)))
        return sorted(rows, key=lambda row: row[1])

    def total_bytes(self) -> int:
        return sum(row[2] for row in self.studies())

    def evict(self, keep: str | None = None) -> list[str]:
        """Remove least recently used studies until the cache fits; never ``keep``."""
        rows = self.studies()
        total = sum(row[2] for row in rows)
        removed = []
        for uid, _, size in rows:
            if total <= self.limit_bytes:
                break
            if uid == keep:
                continue
            shutil.rmtree(self.root / uid, ignore_errors=True)
            total -= size
            removed.append(uid)
        if removed:
            logger.info("cache: evicted %d studies, %d bytes kept", len(removed), total)
        return removed


def _last_used(folder: Path) -> int:
    try:
        return int((folder / _STAMP).read_text(encoding="ascii"))
    except (OSError, ValueError):
        return 0


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
