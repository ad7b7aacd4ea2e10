"""PNG charts drawn with matplotlib's Agg canvas.

A `Figure` made directly (not through ``pyplot``) never picks a GUI backend nor keeps global
state, so charts can be drawn in any process: a headless training node, a DataLoader worker, a
test next to a Qt application. matplotlib is imported only when a chart is drawn.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

from birdview.core.files import write_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["new_figure", "save_png"]

_DPI = 100


def new_figure(size_px: tuple[int, int]) -> Figure:
    """An empty figure that saves as a PNG of exactly ``size_px`` (width, height)."""
    from matplotlib.figure import Figure

    width, height = size_px
    return Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI, facecolor="white")


def save_png(figure: Figure, path: str | os.PathLike) -> Path:
    """Write ``figure`` to ``path`` (its folder made if needed) and return the path.

    Written atomically: the loss curve is redrawn while a run goes on, and whoever has it
    open should see the old chart or the new one, never half a PNG.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    write_atomic(path, buffer.getvalue(), mode=0o666)
    return path
