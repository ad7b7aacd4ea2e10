"""What makes an exported PNG readable on its own: orientation letters at the edges, a scale
bar of a round number of mm, the label overlay drawn as in the viewer, and a legend (boxes and
labels with their colours) — in a font sized to the image, outlined in black so it reads on
bright bone as on black air.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from birdview.core import geometry
from birdview.core.geometry import Plane
from birdview.core.labels_overlay import LabelOverlay, render_rgba
from birdview.core.volume import Volume

__all__ = ["BAR_COLOUR", "PngMarks", "bar_length", "draw_marks", "draw_labels", "mark_font"]

BAR_COLOUR = (255, 214, 0)  # a yellow found in no CT grey and in no box colour
_NICE_MM = (1, 2, 5, 10, 20, 25, 50, 100, 200, 500)
Entry = tuple[str, tuple[int, int, int]]


@dataclass(frozen=True)
class PngMarks:
    """Where the marks went (output pixels), for callers and tests."""

    letters: dict[str, tuple[str, tuple[int, int, int, int]]]  # edge -> (letter, bbox)
    bar_mm: float
    bar_px: int
    bar_box: tuple[int, int, int, int]
    legend_box: tuple[int, int, int, int] | None


def mark_font(image_width: int) -> ImageFont.ImageFont:
    """A scalable font: about 1/45 of the image width, never under 12 px."""
    return ImageFont.load_default(size=max(12, round(image_width / 45)))


def bar_length(mm_per_px: float, width_px: int) -> tuple[float, int]:
    """(mm, px) of the longest round-number bar no longer than a quarter of the width."""
    fitting = [mm for mm in _NICE_MM if mm / mm_per_px <= width_px / 4]
    mm = fitting[-1] if fitting else _NICE_MM[0]
    return float(mm), max(1, round(mm / mm_per_px))


def draw_labels(
    image: Image.Image, overlay: LabelOverlay | None, plane: Plane, slice_index: int
) -> list[Entry]:
    """Blend the overlay's labels on this slice into ``image`` (resized to it); returns the
    legend entries of the labels shown there."""
    if overlay is None or overlay.label_map is None or not overlay.visible:
        return []
    labels = geometry.extract_slice(overlay.label_map.volume, plane, slice_index)
    rgba = render_rgba(np.ascontiguousarray(labels), overlay)
    layer = Image.fromarray(rgba, "RGBA").resize(image.size, Image.Resampling.NEAREST)
    image.paste(Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB"))
    present = set(np.unique(labels).tolist())
    return [
        (item.name, tuple(item.colour))
        for item in overlay.label_map.classes
        if item.value in present and item.value not in overlay.hidden
    ]


def draw_marks(
    image: Image.Image,
    volume: Volume,
    plane: Plane,
    *,
    mm_per_px: float,
    legend: Sequence[Entry] = (),
    top_margin: int = 0,
    bottom_margin: int = 0,
) -> PngMarks:
    """Draw the letters, the scale bar and the legend; the margins keep them clear of the
    corner text above and below."""
    draw = ImageDraw.Draw(image)
    font = mark_font(image.width)
    stroke = max(1, font.size // 8)
    letters = _letters(draw, font, volume, plane, image.size, top_margin, bottom_margin, stroke)
    bar_mm, bar_px = bar_length(mm_per_px, image.width)
    pad = font.size // 2
    thick = max(3, font.size // 4)
    x2, y = image.width - pad, image.height - bottom_margin - pad - thick
    bar_box = (x2 - bar_px, y, x2, y + thick)
    draw.rectangle((bar_box[0] - 1, y - 1, x2 + 1, y + thick + 1), fill=(0, 0, 0))
    draw.rectangle((bar_box[0], y, x2 - 1, y + thick - 1), fill=BAR_COLOUR)
    label = f"{bar_mm:g} mm"
    width = draw.textlength(label, font=font)
    _text(draw, (x2 - width, y - font.size - pad // 2), label, font, BAR_COLOUR, stroke)
    legend_box = _legend(draw, legend, image.size, top_margin + pad, 1)
    return PngMarks(letters, bar_mm, bar_px, bar_box, legend_box)


def _letters(draw, font, volume, plane, size, top, bottom, stroke) -> dict:
    letters = geometry.orientation_letters(volume, plane) or {}
    width, height = size
    placed = {}
    for edge, letter in letters.items():
        w = draw.textlength(letter, font=font)
        x = {"left": 6, "right": width - 6 - w}.get(edge, (width - w) / 2)
        y = {"top": top + 4, "bottom": height - bottom - font.size - 6}.get(
            edge, (height - font.size) / 2
        )
        _text(draw, (round(x), round(y)), letter, font, (255, 255, 255), stroke)
        placed[edge] = (letter, draw.textbbox((round(x), round(y)), letter, font=font))
    return placed


def _legend(draw, entries: Sequence[Entry], size, top: int, stroke: int):
    """Top right, in columns that end above the right edge's letter (half the height)."""
    if not entries:
        return None
    width, height = size
    font = ImageFont.load_default(size=max(11, round(width / 70)))
    line = font.size + font.size // 4
    rows = max(1, (height // 2 - font.size - top) // line)
    columns = [entries[n : n + rows] for n in range(0, len(entries), rows)]
    widths = [
        round(font.size * 1.5 + max(draw.textlength(name, font=font) for name, _ in col))
        for col in columns
    ]
    pad = font.size // 2
    x1 = max(0, width - sum(widths) - pad * (len(columns) + 2))
    box = (x1, top, width - pad, top + line * len(columns[0]) + pad)
    draw.rectangle(box, fill=(0, 0, 0), outline=(160, 160, 160))
    x = x1 + pad
    for col, col_width in zip(columns, widths, strict=True):
        for n, (name, colour) in enumerate(col):
            y = top + pad // 2 + n * line
            draw.rectangle((x, y + 2, x + font.size - 3, y + font.size - 1), fill=tuple(colour))
            _text(draw, (x + font.size + 2, y), name, font, (255, 255, 255), stroke)
        x += col_width + pad
    return box


def _text(draw, xy, text: str, font, fill, stroke: int) -> None:
    draw.text(xy, text, fill=fill, font=font, stroke_width=stroke, stroke_fill=(0, 0, 0))
