"""Logging set-up for BirdView's entry points (the library itself only adds a NullHandler).

Records go to stderr and to a rotating file in the platform's log folder. Third-party readers
can quote header values in their messages (pydicom's validation warnings quote names and UIDs),
so their records and Python warnings are kept out of both: BirdView's own records carry shapes,
timings and hashed ids only.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

# Loggers whose messages may quote DICOM header values (patient names among them).
_QUOTING_LOGGERS = ("pydicom", "py.warnings")


class _DropHeaderQuotes(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(_QUOTING_LOGGERS)


def log_folder() -> Path:
    """Where BirdView keeps its log files on this platform."""
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home())) / "BirdView" / "Logs"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Logs" / "BirdView"
    state = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(state) / "birdview" / "log"


def configure_logging(*, verbose: bool = False, to_file: bool = True) -> Path | None:
    """Configure the root logger once; returns the log file's path when one is written."""
    logging.captureWarnings(True)
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    console = logging.StreamHandler()
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    handlers: list[logging.Handler] = [console]
    path = None
    if to_file:
        try:
            folder = log_folder()
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "birdview.log"
            handlers.append(
                logging.handlers.RotatingFileHandler(
                    path, maxBytes=2_000_000, backupCount=3, encoding="utf-8"
                )
            )
        except OSError:
            path = None  # a read-only home must not stop the viewer
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(_DropHeaderQuotes())
        root.addHandler(handler)
    return path
