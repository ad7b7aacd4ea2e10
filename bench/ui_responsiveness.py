"""UI responsiveness while the model works: the longest event-loop stall during an ask and
during a volume sweep, in the real main window with the real worker process.

A QTimer beats every 5 ms on the GUI thread; the longest gap between two beats is the longest
time the window could not react. The baseline, measured in the same run, is the same window
idling with the sample CT open (no model work). Target: longest stall <= 50 ms.

    python bench/ui_responsiveness.py [--model DIR] [--repeats 3]

Without --model a tiny checkpoint of the demo family is built from scratch (random answers of full
length: the worst case for streaming).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from birdview.inference.offline import go_offline

go_offline()

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "samples" / "totalseg_ct"
TARGET_MS = 50.0


class Heartbeat:
    """Records the longest gap between 5 ms timer beats."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._beat)
        self.last = 0.0
        self.longest = 0.0

    def _beat(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self.last)
        self.last = now

    def start(self) -> None:
        self.last, self.longest = time.perf_counter(), 0.0
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return self.longest * 1000


def spin(app, until, timeout_s: float = 300.0) -> None:
    end = time.monotonic() + timeout_s
    while not until():
        if time.monotonic() > end:
            raise TimeoutError("the window did not get there in time")
        app.processEvents()
        time.sleep(0.001)


def measure(app, window, action, repeats: int) -> float:
    """The longest stall over ``repeats`` runs of ``action`` until the assistant is idle."""
    worst = 0.0
    beat = Heartbeat()
    for _ in range(repeats):
        beat.start()
        action()
        spin(app, lambda: not window.assistant.busy)
        worst = max(worst, beat.stop())
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint folder (default: build a tiny one)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from PySide6.QtWidgets import QApplication

    from birdview.ui.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    app.setOrganizationName("BirdViewBench")
    scratch = Path(tempfile.mkdtemp(prefix="birdview-bench-"))
    model = args.model
    if model is None:
        from birdview.core import families
        from trainer.tiny import build_tiny

        model = str(build_tiny(families.demo_family().key, scratch / "tiny", seed=0))
    window = MainWindow(session_dir=str(scratch / "sessions"), autoload_model=False)
    window.resize(1400, 900)
    window.show()
    window.open_path(str(SAMPLE))
    spin(app, lambda: window.session.volume is not None)
    window.model_panel.model_edit.setText(model)
    window.model_panel.load()
    spin(app, lambda: window.assistant.model.state in ("ready", "error"))
    if not window.assistant.model.ready:
        print(f"model did not load: {window.assistant.model.message}")
        return 1

    idle = Heartbeat()
    idle.start()
    end = time.monotonic() + 2.0
    spin(app, lambda: time.monotonic() > end)
    baseline = idle.stop()
    ask = measure(app, window, lambda: window.controller.ask("Describe this image."), args.repeats)
    sweep = measure(app, window, lambda: window.controller.find_in_volume("liver"), 1)
    window.close()

    print(f"idle window (baseline): longest stall {baseline:6.1f} ms")
    for name, value in (("ask", ask), ("volume sweep", sweep)):
        verdict = "ok" if value <= TARGET_MS else "OVER TARGET"
        print(
            f"during {name:12s}: longest stall {value:6.1f} ms = {value / baseline:4.1f}x idle "
            f"(target <= {TARGET_MS:.0f} ms: {verdict})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
