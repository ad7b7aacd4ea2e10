"""Slice change in the real SliceView at 512x512: extract, window/level, QImage, pixmap, paint.

Scrolls the real CT (512x512) through a real `SliceView` observing a real `Session`, timing
each step from `session.scroll` until the new pixmap is set, and again once the viewport has
repainted. The baseline, measured in the
same run, is the naive pipeline a first version would write: float windowing of the slice,
QImage, QPixmap, and the same repaint. Target: median <= 5 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtGui import QImage, QPixmap  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from birdview.core import geometry  # noqa: E402
from birdview.core.geometry import Plane  # noqa: E402
from birdview.core.io import load, scan  # noqa: E402
from birdview.core.session import Session  # noqa: E402
from birdview.ui.slice_view import SliceView  # noqa: E402

CT = Path(__file__).resolve().parents[2] / "shared" / "data" / "totalseg" / "example_ct_dicom"


def naive_step(view: SliceView, volume, index: int, window) -> None:
    image = np.asarray(volume.voxels[index], dtype=np.float64)
    grey = np.clip((image - window.low) / window.width * 255, 0, 255).astype(np.uint8)
    qimage = QImage(
        grey.tobytes(), grey.shape[1], grey.shape[0], grey.shape[1], QImage.Format.Format_Grayscale8
    )
    view._item.setPixmap(QPixmap.fromImage(qimage))
    view.viewport().repaint()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    raw = load(scan(CT).entries[0])
    volume = geometry.to_canonical(raw)
    session = Session()
    session.open_volume(volume, None, geometry.acquisition_plane(raw))
    view = SliceView(session, Plane.AXIAL)
    view.resize(800, 800)
    view.show()
    app.processEvents()

    ours, painted, naive = [], [], []
    n = volume.shape[0]
    for step in range(args.steps):
        delta = 1 if (step // (n - 1)) % 2 == 0 else -1
        started = time.perf_counter()
        session.scroll(Plane.AXIAL, delta)
        ours.append(time.perf_counter() - started)
        view.viewport().repaint()
        painted.append(time.perf_counter() - started)

        started = time.perf_counter()
        naive_step(view, volume, step % n, session.window)
        naive.append(time.perf_counter() - started)
    o, b = statistics.median(ours) * 1000, statistics.median(naive) * 1000
    p = statistics.median(painted) * 1000
    print(f"slice {volume.shape[2]}x{volume.shape[1]}, view 800x800, {args.steps} steps")
    print(f"naive float pipeline     {b:6.2f} ms median (baseline)")
    print(f"BirdView slice change    {o:6.2f} ms median  ratio {o / b:.2f}  (target <= 5 ms)")
    print(f"  ... and painted        {p:6.2f} ms median  ratio {p / b:.2f}  (800x800 repaint)")
    view.close()
    return 0 if o <= 5 else 1


if __name__ == "__main__":
    sys.exit(main())
