"""Label overlays and UI stalls: the longest event-loop stall while opening the bundled label
map and while paging through every axial slice with labels filled and outlined, in the real
main window (1+3 layout, so each page redraws the labels in the axial view).

The baseline, measured in the same run, is the same paging without labels. Target: longest
stall <= 50 ms (issue 20).

    python bench/label_overlay.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from ui_responsiveness import Heartbeat, spin  # noqa: E402 - the same heartbeat as its sibling

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "samples" / "totalseg_ct"
TARGET_MS = 50.0


def page_through(app, window, repeats: int) -> float:
    """The longest stall while paging through every axial slice, ``repeats`` times."""
    from birdview.core.geometry import Plane

    beat = Heartbeat()
    beat.start()
    for _ in range(repeats):
        for index in range(window.session.slice_count(Plane.AXIAL)):
            window.session.set_slice(Plane.AXIAL, index)
            end = time.monotonic() + 0.02
            spin(app, lambda end=end: time.monotonic() > end)
    return beat.stop()


def open_labels(app, window) -> float:
    """The longest stall from "Show bundled labels" until they are shown."""
    beat = Heartbeat()
    beat.start()
    window.labels.bundled_action.trigger()
    spin(app, lambda: window.labels.overlay.label_map is not None)
    end = time.monotonic() + 0.1  # and drawn
    spin(app, lambda: time.monotonic() > end)
    return beat.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from PySide6.QtWidgets import QApplication

    from birdview.ui.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    app.setOrganizationName("BirdViewBench")
    scratch = Path(tempfile.mkdtemp(prefix="birdview-bench-"))
    window = MainWindow(session_dir=str(scratch / "sessions"), autoload_model=False)
    window.session.set_layout("1+3")
    window.resize(1400, 900)
    window.show()
    window.open_path(str(SAMPLE))
    spin(app, lambda: window.session.volume is not None and not window.loader.busy)

    baseline = page_through(app, window, args.repeats)
    first = open_labels(app, window)  # the first open also imports the NIfTI reader
    window.labels.close()
    again = open_labels(app, window)
    filled = page_through(app, window, args.repeats)
    window.labels.overlay.set_outline(True)
    outlined = page_through(app, window, args.repeats)
    window.close()

    print(f"paging without labels (baseline): longest stall {baseline:6.1f} ms")
    rows = (("first open", first), ("open again", again), ("paging, filled", filled))
    for name, value in (*rows, ("paging, outlined", outlined)):
        verdict = "ok" if value <= TARGET_MS else "OVER TARGET"
        print(
            f"{name:20s}: longest stall {value:6.1f} ms = {value / baseline:4.1f}x baseline "
            f"(target <= {TARGET_MS:.0f} ms: {verdict})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
