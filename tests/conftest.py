"""Shared test fixtures: where the real test data lives."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from birdview.inference.offline import go_offline

# Tiny models are built and loaded from local folders only, in this process and its children.
go_offline()
# Logs of the app and of worker processes started by tests stay out of the user's log folder.
os.environ.setdefault("XDG_STATE_HOME", tempfile.mkdtemp(prefix="birdview-test-state-"))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BIRDVIEW_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared(*parts: str) -> Path:
    """A path under ../shared/data (set BIRDVIEW_SHARED_DATA to use another copy)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"test data not present: {path}")
    return path


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.fail(f"test data not present: {SHARED_DATA}")
    return SHARED_DATA
