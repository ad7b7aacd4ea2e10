"""Cold start: a fresh process until BirdView's main window is shown, against a bare Qt window.

Each run is a new interpreter (so nothing is cached in-process), measured from outside until the
child prints that its window is exposed. The baseline is the same child showing an empty
QMainWindow, so the ratio is BirdView's own start-up cost on top of Python + Qt.
Target: BirdView's window shown within 1.5 s, and neither torch nor transformers imported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

CHILD = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication(sys.argv[:1])
if {birdview}:
    from birdview.ui.main_window import MainWindow
    window = MainWindow()
else:
    window = QMainWindow()
window.resize(1400, 900)
window.show()
def done():
    heavy = [m for m in ("torch", "transformers", "SimpleITK") if m in sys.modules]
    print("SHOWN", ",".join(heavy), flush=True)
    app.quit()
QTimer.singleShot(0, done)
app.exec()
"""


def start_once(birdview: bool) -> tuple[float, str]:
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(birdview=birdview)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - started
    proc.wait(timeout=60)
    if not line.startswith("SHOWN"):
        raise SystemExit(f"the child did not show a window (exit {proc.returncode})")
    return elapsed, line.split(" ", 1)[1].strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    bare, ours, heavy = [], [], set()
    for _ in range(args.repeats):
        bare.append(start_once(False)[0])
        seconds, modules = start_once(True)
        ours.append(seconds)
        heavy.update(filter(None, modules.split(",")))
    b, o = statistics.median(bare), statistics.median(ours)
    print(f"bare Qt main window       {b * 1000:7.0f} ms (baseline)")
    print(f"BirdView main window      {o * 1000:7.0f} ms  ratio {o / b:.2f}  (target <= 1500 ms)")
    print(f"heavy modules at start-up: {', '.join(sorted(heavy)) or 'none'}")
    return 0 if o <= 1.5 and not heavy & {"torch", "transformers"} else 1


if __name__ == "__main__":
    sys.exit(main())
