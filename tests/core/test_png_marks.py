"""The exported PNG reads on its own: at 2× it has twice the pixels, its scale bar is exactly
N mm long at the study's pixel spacing, the orientation letters are drawn at the edges, and
the legend names the boxes and the bundled label map's labels on that slice, on the sample CT."""

from __future__ import annotations

import numpy as np
from PIL import Image

from birdview.core import geometry
from birdview.core.box import Box
from birdview.core.display import Window
from birdview.core.exports import export_png, png_size
from birdview.core.labels_io import bundled_labels_path, open_labels
from birdview.core.labels_overlay import LabelOverlay
from birdview.core.png_marks import BAR_COLOUR, bar_length, draw_marks
from tests.core.test_exports import _ct, _record

AXIAL = "axial"


def _export(tmp_path, name: str, zoom: float, **kwargs) -> tuple[np.ndarray, tuple[int, int]]:
    volume = _ct()
    path = tmp_path / name
    size = export_png(
        _record(volume), volume, path, plane=AXIAL, slice_index=10, window=Window(400, 50),
        anonymise=True, zoom=zoom, **kwargs,
    )  # fmt: skip
    return np.asarray(Image.open(path).convert("RGB")), size


def _bar_runs(pixels: np.ndarray) -> list[int]:
    """Lengths of the longest horizontal run of the bar colour in each row that has one."""
    mask = np.all(pixels == BAR_COLOUR, axis=2)
    runs = []
    for row in mask:
        padded = np.diff(np.concatenate(([0], row.astype(int), [0])))
        starts, ends = np.flatnonzero(padded == 1), np.flatnonzero(padded == -1)
        if len(starts):
            runs.append(int((ends - starts).max()))
    return runs


def test_a_2x_export_has_twice_the_pixels_and_a_bar_of_n_mm(tmp_path) -> None:
    volume = _ct()
    one, size1 = _export(tmp_path, "1x.png", 1.0)
    two, size2 = _export(tmp_path, "2x.png", 2.0)
    assert size2 == (2 * size1[0], 2 * size1[1]) == (two.shape[1], two.shape[0])
    spacing_mm = geometry.pixel_size_mm(volume, AXIAL)[0]
    for pixels, zoom in ((one, 1.0), (two, 2.0)):
        mm, px = bar_length(spacing_mm / zoom, pixels.shape[1])
        # The bar drawn in the file: its length in output pixels is N mm / output pixel size.
        assert max(_bar_runs(pixels)) == px == round(mm / (spacing_mm / zoom))
        assert px <= pixels.shape[1] / 4 and mm in (10, 20, 25, 50, 100)


def test_orientation_letters_are_drawn_at_the_edges(tmp_path) -> None:
    volume = _ct()
    width, height = png_size(volume, AXIAL, 10, zoom=2.0)
    image = Image.new("RGB", (width, height))
    marks = draw_marks(image, volume, AXIAL, mm_per_px=0.5, top_margin=30, bottom_margin=60)
    assert {e: letter for e, (letter, _) in marks.letters.items()} == (
        geometry.orientation_letters(volume, AXIAL)
    )
    pixels = np.asarray(image)
    for edge, (_, (x1, y1, x2, y2)) in marks.letters.items():
        inside = pixels[y1:y2, x1:x2]
        assert (inside.max(axis=2) == 255).sum() > 10, f"no letter at the {edge} edge"
    left, right = marks.letters["left"][1], marks.letters["right"][1]
    assert left[2] < width / 4 and right[0] > 3 * width / 4
    # Nothing overlaps: letters, bar and the margins kept for the corner text.
    boxes = [bbox for _, bbox in marks.letters.values()] + [marks.bar_box]
    for n, a in enumerate(boxes):
        assert a[1] >= 30 and a[3] <= height - 60
        for b in boxes[n + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def test_the_legend_names_boxes_and_the_labels_on_the_slice(tmp_path) -> None:
    volume = _ct()
    overlay = LabelOverlay()
    overlay.open(open_labels(bundled_labels_path(volume), volume))
    labels = geometry.extract_slice(overlay.label_map.volume, AXIAL, 10)
    on_slice = [c for c in overlay.label_map.classes if c.value in set(np.unique(labels))]
    assert on_slice, "the bundled label map has labels on axial slice 10"
    box = Box(AXIAL, 10, 100, 120, 250, 300, label="liver?")
    plain, _ = _export(tmp_path, "plain.png", 2.0, boxes=[box])
    shown, _ = _export(tmp_path, "labels.png", 2.0, boxes=[box], labels=overlay)
    # Each label's colour is blended into the image where the label is, and appears pure in
    # its legend swatch.
    for item in on_slice:
        swatch = np.all(shown == item.colour, axis=2)
        assert swatch.sum() >= 50, f"no legend swatch for {item.name}"
        assert not np.all(plain == item.colour, axis=2).any()
    assert not np.array_equal(plain, shown)
