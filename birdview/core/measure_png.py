"""The user's measurements drawn into the annotated PNG export, as the viewer draws them:
yellow shapes over a dark halo, and their values beside them in text with a dark shadow (an
ROI's statistics over the thick slab shown, with the slab named, as on screen)."""

from __future__ import annotations

from collections.abc import Sequence

from birdview.core.annotations import arrow_head_points
from birdview.core.geometry import Plane
from birdview.core.measure import ANNOTATION_KINDS, Measurement, measure
from birdview.core.slab import Slab
from birdview.core.volume import Volume

__all__ = ["draw_measurements"]

COLOUR = (255, 215, 0)
_SHADOW = (0, 0, 0)
_LINE_HEIGHT = 12


def draw_measurements(
    draw,
    font,
    items: Sequence[Measurement],
    volume: Volume,
    plane: Plane,
    slice_index: int,
    scale: tuple[float, float],
    slab: Slab | None = None,
) -> None:
    """Draw the measurements of slice ``slice_index`` of ``plane`` on a Pillow ``draw`` whose
    image is the slice (or ``slab``'s projection of it) scaled by ``scale`` (output pixels
    per image pixel, x and y)."""
    sx, sy = scale
    for m in items:
        if m.plane is not Plane(plane) or m.slice_index != slice_index:
            continue
        points = [(x * sx, y * sy) for x, y in m.points_px]
        for colour, width in ((_SHADOW, 4), (COLOUR, 2)):
            _shape(draw, m.kind, points, colour, width)
        right = max(p[0] for p in points) + 6
        top = min(p[1] for p in points) if m.kind != "angle" else points[1][1] + 4
        lines = measure(m, volume, slab).lines()
        if m.kind in ANNOTATION_KINDS:  # an arrow's note, a text note's text
            lines = [m.label] if m.label else []
            top -= 6 if m.kind == "text" else 0
        for n, line in enumerate(lines):
            _text(draw, (right, top + n * _LINE_HEIGHT), line.replace("²", "2"), font)


def _shape(draw, kind: str, points, colour, width: int) -> None:
    if kind == "text":
        (x, y), r = points[0], width
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
        return
    if kind == "arrow":
        draw.line(points, fill=colour, width=width)
        draw.polygon(arrow_head_points(points[0], points[1], 10 + width), fill=colour)
        return
    if kind in ("ruler", "angle"):
        draw.line(points, fill=colour, width=width, joint="curve")
        return
    (x1, y1), (x2, y2) = points
    box = [min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)]
    if kind == "ellipse":
        draw.ellipse(box, outline=colour, width=width)
    else:
        draw.rectangle(box, outline=colour, width=width)


def _text(draw, xy, text: str, font) -> None:
    x, y = xy
    for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1), (1, 1)):
        draw.text((x + dx, y + dy), text, fill=_SHADOW, font=font)
    draw.text((x, y), text, fill=COLOUR, font=font)
