"""Where the bundled sample studies and the demo model are: a source checkout, an installer
(PyInstaller puts them under ``sys._MEIPASS``), or ``BIRDVIEW_RESOURCES``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["demo_model_dir", "resources_dir", "sample_ct_dir"]


def resources_dir() -> Path:
    """The folder holding ``samples/`` and ``demo_model/``."""
    override = os.environ.get("BIRDVIEW_RESOURCES")
    if override:
        return Path(override)
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


def sample_ct_dir() -> Path | None:
    """The bundled sample CT series (TotalSegmentator's example), or None when not shipped."""
    folder = resources_dir() / "samples" / "totalseg_ct"
    return folder if folder.is_dir() else None


def demo_model_dir() -> Path | None:
    """The bundled demo checkpoint (built by experiments/demo_model.py), or None when not
    shipped."""
    folder = resources_dir() / "demo_model"
    return folder if (folder / "config.json").is_file() else None
