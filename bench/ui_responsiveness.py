"""UI responsiveness while the model works: the longest event-loop stall during an ask and
during a volume sweep, in the real main window with the real worker process; and while cine
plays the sample CT (1+3 views, plain and as a 20 mm MIP slab).

A QTimer beats every 5 ms on the GUI thread; the longest gap between two beats is the longest
time the window could not react. The baseline, measured in the same run, is the same window
idling with the sample CT open (no model work). Target: longest stall <= 50 ms.

    python bench/ui_responsiveness.py [--model DIR] [--repeats 3] [--cine-only]

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


class Stall(float):
    """A longest stall in ms, with what the viewer's process did during it.

    ``process_cpu_ms``: CPU time of all the viewer's threads within that gap. Near zero means
    the process was not running at all (the OS gave the cores to others: a loaded machine),
    not that the viewer was busy. ``busiest_ms``: the most UI-thread CPU time between two
    beats in the whole run: how long the viewer's own code kept the UI thread from its loop.
    """

    process_cpu_ms: float = 0.0
    busiest_ms: float = 0.0
    ended_at: float = 0.0  # perf_counter() when the longest gap ended


class Heartbeat:
    """Records the longest gap between 5 ms timer beats, and the UI thread's CPU time in each."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._beat)
        self.last = 0.0
        self.longest = 0.0

    def _beat(self) -> None:
        now, cpu, process = time.perf_counter(), time.thread_time(), time.process_time()
        if now - self.last > self.longest:
            self.longest, self.longest_process = now - self.last, process - self.last_process
            self.longest_end = now
        self.busiest = max(self.busiest, cpu - self.last_cpu)
        self.last, self.last_cpu, self.last_process = now, cpu, process

    def start(self) -> None:
        self.last, self.longest = time.perf_counter(), 0.0
        self.last_cpu, self.last_process = time.thread_time(), time.process_time()
        self.busiest = self.longest_process = 0.0
        self.longest_end = self.last
        self.timer.start()

    def stop(self) -> Stall:
        self.timer.stop()
        stall = Stall(self.longest * 1000)
        stall.process_cpu_ms, stall.busiest_ms = self.longest_process * 1000, self.busiest * 1000
        stall.ended_at = self.longest_end
        return stall


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


def measure_cine(app, window, fps: int, seconds: float = 3.0) -> tuple[float, float]:
    """The longest stall while cine plays at ``fps`` for ``seconds``, and the frames per
    second it reached."""
    frames = []
    window.session.events.cursor_ijk.connect(frames.append)
    cine = window.review.cine
    cine.set_fps(fps)
    beat = Heartbeat()
    beat.start()
    started = time.perf_counter()
    cine.play()
    spin(app, lambda: time.perf_counter() - started > seconds)
    cine.pause()
    stall = beat.stop()
    window.session.events.cursor_ijk.disconnect(frames.append)
    return stall, len(frames) / (time.perf_counter() - started)


def cine_rows(app, window) -> list[tuple[str, float, float]]:
    """(name, longest stall ms, fps reached) for cine at 30 and 60 fps, plain and MIP."""
    window.session.set_layout("1+3")
    spin(app, lambda: all(v.isVisible() for v in window.view_layout.views()), 10)
    measure_cine(app, window, 30, seconds=0.5)  # warm-up: first paints of the shown views
    rows = []
    for mode in ("off", "mip"):
        window.review.slab.set_slab(mode, 20.0)
        for fps in (30, 60):
            stall, reached = measure_cine(app, window, fps)
            label = f"cine {fps} fps" + (" MIP" if mode == "mip" else "")
            rows.append((label, stall, reached))
    window.review.slab.set_slab("off", 20.0)
    window.session.set_layout("1x1")
    return rows


def load_rows(app, window, scratch: Path) -> list[tuple[str, float, str]]:
    """The longest stalls while a 500-slice series loads, while the bundled label map opens
    (the first time: its reader is imported then) and while paging through the sample CT with
    the labels drawn in 1+3 views. Leaves the sample CT open again."""
    from big_series import make_series

    from birdview.core.geometry import Plane

    series = make_series(SAMPLE, scratch / "ct500", 500)
    beat = Heartbeat()
    beat.start()
    started = time.perf_counter()
    window.open_path(str(series))
    spin(app, lambda: window.session.volume is not None and window.session.volume.shape[0] == 500)
    spin(app, lambda: not window.loader.busy)
    rows = [("load 500 slices", beat.stop(), f" in {time.perf_counter() - started:.1f} s")]
    window.open_path(str(SAMPLE))
    spin(app, lambda: window.session.volume.shape[0] != 500 and not window.loader.busy)
    window.session.set_layout("1+3")
    beat.start()
    window.labels.open_bundled()
    spin(app, lambda: window.labels.overlay.label_map is not None)
    rows.append(("open label map", beat.stop(), " (first open)"))
    beat.start()
    for index in range(window.session.slice_count(Plane.AXIAL)):
        window.session.set_slice(Plane.AXIAL, index)
        end = time.monotonic() + 0.02
        spin(app, lambda end=end: time.monotonic() > end)
    rows.append(("page w/ labels", beat.stop(), ""))
    window.labels.close()
    window.session.set_layout("1x1")
    return rows


def idle_baseline(app) -> float:
    idle = Heartbeat()
    idle.start()
    end = time.monotonic() + 2.0
    spin(app, lambda: time.monotonic() > end)
    return idle.stop()


def report(baseline: float, rows: list[tuple[str, float, str]]) -> None:
    print(f"idle window (baseline): longest stall {baseline:6.1f} ms (load {_load()})")
    for name, value, note in rows:
        verdict = "ok" if value <= TARGET_MS else "OVER TARGET"
        print(
            f"during {name:15s}: longest stall {value:6.1f} ms = {value / baseline:4.1f}x idle "
            f"(target <= {TARGET_MS:.0f} ms: {verdict}){note}{_cpu_note(value)}"
        )


def _cpu_note(value: float) -> str:
    """What the viewer itself did in its longest stall (see `Stall`)."""
    if not isinstance(value, Stall):
        return ""
    own = "ok" if value.busiest_ms <= TARGET_MS else "OVER TARGET"
    return (
        f"; viewer CPU in it {value.process_cpu_ms:.1f} ms, UI thread busiest "
        f"{value.busiest_ms:.1f} ms ({own})"
    )


def _load() -> str:
    """The 1-minute load average: stalls on a shared machine say as much about it as us."""
    return (
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs" if hasattr(os, "getloadavg") else "?"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint folder (default: build a tiny one)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cine-only", action="store_true", help="no model: cine stalls only")
    args = parser.parse_args()

    from PySide6.QtWidgets import QApplication

    from birdview.ui.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    app.setOrganizationName("BirdViewBench")
    scratch = Path(tempfile.mkdtemp(prefix="birdview-bench-"))
    model = args.model
    if model is None and not args.cine_only:
        from birdview.core import families
        from trainer.tiny import build_tiny

        model = str(build_tiny(families.demo_family().key, scratch / "tiny", seed=0))
    window = MainWindow(session_dir=str(scratch / "sessions"), autoload_model=False)
    window.resize(1400, 900)
    window.show()
    window.open_path(str(SAMPLE))
    spin(app, lambda: window.session.volume is not None)
    if args.cine_only:
        baseline = idle_baseline(app)
        cine = [(n, s, f" at {r:4.1f} fps") for n, s, r in cine_rows(app, window)]
        loads = load_rows(app, window, scratch)
        window.close()
        report(baseline, cine + loads)
        return 0
    window.model_panel.model_edit.setText(model)
    window.model_panel.load()
    spin(app, lambda: window.assistant.model.state in ("ready", "error"))
    if not window.assistant.model.ready:
        print(f"model did not load: {window.assistant.model.message}")
        return 1

    baseline = idle_baseline(app)
    ask = measure(app, window, lambda: window.controller.ask("Describe this image."), args.repeats)
    sweep = measure(app, window, lambda: window.controller.find_in_volume("liver"), 1)
    cine = [(n, s, f" at {r:4.1f} fps") for n, s, r in cine_rows(app, window)]
    loads = load_rows(app, window, scratch)
    window.close()
    report(baseline, [("ask", ask, ""), ("volume sweep", sweep, ""), *cine, *loads])
    return 0


if __name__ == "__main__":
    sys.exit(main())
