"""UI stalls while propagated masks stream into the view: the longest event-loop gap while a
tiny random SAM2 (and SAM2-video) checkpoint propagates a box's mask through the 20-slice sample
CT in the real window and worker, the mask layer redrawing in 1+3 views as slices arrive, vs
the same window idling (baseline, same run). Target: longest stall <= 50 ms.

And the longest gap from clicking *Segment box* (one slice's mask) until its numbers (mL,
axes, HU: a pass over the whole volume) are in the status line and in the Masks dock.

    python bench/segment_ui.py [--repeats 3] [--kinds sam2 sam2_video]

Also prints how many slices arrived, how often the mask layer of the main view redrew, and
how long after the last slice the panel showed its numbers (mL, axes, HU: a pass over the
whole volume, run in a thread).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ui_responsiveness import SAMPLE, Heartbeat, idle_baseline, report, spin  # noqa: E402

from birdview.core.box import Box  # noqa: E402
from birdview.core.geometry import Plane  # noqa: E402

BOX = Box(Plane.AXIAL, 8, 150.0, 160.0, 330.0, 300.0, label="organ")


def segment_box_once(app, window) -> tuple[float, float, float]:
    """(longest stall ms, ms to the numbers in the status line, ms to them in the dock) of
    one click on Segment box."""
    masks, segment, panel = window.masks.masks, window.segment, window.mask_panel
    masks.reset(window.session.volume.identity, window.session.volume.shape)
    window.assistant.set_user_box(BOX)
    segment.last_measures = None
    beat = Heartbeat()
    beat.start()
    started = time.perf_counter()
    segment.segment_action.trigger()
    spin(app, lambda: segment.last_measures is not None)
    status_ms = (time.perf_counter() - started) * 1000
    spin(app, lambda: len(masks) == 1 and panel.row_text(0)[2] != "…")
    dock_ms = (time.perf_counter() - started) * 1000
    return beat.stop(), status_ms, dock_ms


def propagate_once(app, window) -> tuple[float, int, int, float]:
    """(longest stall ms, slices arrived, main-view redraws, ms from the last slice to the
    panel's numbers) of one box → segment → propagate run."""
    masks = window.masks.masks
    masks.reset(window.session.volume.identity, window.session.volume.shape)
    window.assistant.set_user_box(BOX)
    window.segment.segment_box()
    spin(app, lambda: len(masks) == 1 and not window.segment.measuring)
    window.session.set_slice(Plane.AXIAL, 3)  # a slice the propagation reaches, shown
    layer = window.masks.layers[0]
    redraws = layer.redraws
    beat = Heartbeat()
    beat.start()
    window.segment.propagate()
    spin(app, lambda: not window.segment.busy)
    ended = time.perf_counter()
    panel = window.mask_panel  # its numbers pass starts 0.3 s after the last slice
    spin(app, lambda: time.perf_counter() - ended > 0.35 and not panel.measuring)
    spin(app, lambda: panel.row_text(0)[2] != "…")
    numbers_ms = (time.perf_counter() - ended) * 1000
    stall = beat.stop()
    stall.after_last_ms = (stall.ended_at - ended) * 1000
    arrived = len(window.segment.last_reply.slices)
    return stall, arrived, layer.redraws - redraws, numbers_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kinds", nargs="+", default=["sam2", "sam2_video"])
    args = parser.parse_args()

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from birdview.core import families
    from birdview.ui.main_window import MainWindow
    from birdview.ui.settings import Settings
    from tests.inference.tiny_sam import build_tiny_sam
    from trainer.tiny import build_tiny

    app = QApplication(sys.argv[:1])
    scratch = Path(tempfile.mkdtemp(prefix="birdview-segment-ui-"))
    settings = Settings(QSettings(str(scratch / "settings.ini"), QSettings.Format.IniFormat))
    window = MainWindow(settings, session_dir=str(scratch / "sessions"), autoload_model=False)
    window.resize(1400, 900)
    window.show()
    window.open_path(str(SAMPLE))
    spin(app, lambda: window.session.volume is not None)
    window.session.set_layout("1+3")
    model = build_tiny(families.demo_family().key, scratch / "tiny", seed=0)
    window.model_panel.model_edit.setText(str(model))
    window.model_panel.load()
    spin(app, lambda: window.assistant.model.state in ("ready", "error"))
    if not window.assistant.model.ready:
        print(f"model did not load: {window.assistant.model.message}")
        return 1
    baseline = idle_baseline(app)
    rows = []
    for kind in args.kinds:
        settings.set_segmenter_dir(str(build_tiny_sam(kind, scratch / kind, seed=0)))
        propagate_once(app, window)  # warm-up: loads the segmenter, first paints
        worst, notes = 0.0, ""
        for _ in range(args.repeats):
            stall, status_ms, dock_ms = segment_box_once(app, window)
            worst = max(worst, stall, key=float)
            notes = f"; numbers {status_ms:.0f} ms after (status), {dock_ms:.0f} ms (dock)"
        rows.append((f"segment box {kind}", worst, notes))
        worst, notes = 0.0, ""
        for _ in range(args.repeats):
            stall, arrived, redraws, numbers_ms = propagate_once(app, window)
            if stall >= worst:
                # when it ended says what it was: streaming (< 0) or the numbers pass (> 300)
                where = f", longest gap ended {stall.after_last_ms:+.0f} ms from the last slice"
            worst = max(worst, stall, key=float)
            notes = f"; {arrived} slices, {redraws} redraws, numbers {numbers_ms:.0f} ms after"
            notes += where
        rows.append((f"propagate {kind}", worst, notes))
    window.close()
    report(baseline, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
