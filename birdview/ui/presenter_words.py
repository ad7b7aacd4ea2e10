"""Plain words for presenter mode: what the viewer writes for radiologists, said for students.

`plain_overlay` rewrites the corner text of a view ("W 400 / L 40" → "Contrast 400, brightness
40"; "Im 12 (12/30)" → "Image 12 of 30"; "Loc 31.5 mm" → "Position 31.5 mm"); `plain_chat`
rewrites the transcript's HTML (a sweep's "3D box (LPS mm): x a…b, y c…d, z e…f" → "Extent:
60 × 80 × 14 mm (side to side × front to back × head to foot)"; box sizes in pixels are left
out). Only the words change, never what the numbers say.
"""

from __future__ import annotations

import re
from dataclasses import replace

from birdview.ui.overlays import Overlay

__all__ = ["JARGON", "plain_chat", "plain_line", "plain_overlay"]

_NUMBER = r"-?\d+(?:\.\d+)?"
_LINE_RULES = (
    (re.compile(rf"^W ({_NUMBER}) / L ({_NUMBER})$"), r"Contrast \1, brightness \2"),
    (re.compile(r"^Im (\d+) \((\d+)/(\d+)\)$"), r"Image \2 of \3"),
    (re.compile(r"^Im (\d+)$"), r"Image \1"),
    (re.compile(r"^Slice (\d+)/(\d+)$"), r"Slice \1 of \2"),
    (re.compile(rf"^(?:Loc|Pos) ({_NUMBER}) mm$"), r"Position \1 mm"),
)
_EXTENT = re.compile(
    rf"3D box \(LPS mm\): x ({_NUMBER})…({_NUMBER}), y ({_NUMBER})…({_NUMBER}), "
    rf"z ({_NUMBER})…({_NUMBER})"
)
_PIXEL_SIZE = re.compile(r", \d+×\d+ px")
_WHERE = re.compile(r"\bIm (\d+)")
# What presenter mode must not show (the tests look for these in every visible text).
JARGON = ("3D box (LPS mm)", "LPS", " px<", "W ", "Loc ")


def plain_line(line: str) -> str:
    for pattern, words in _LINE_RULES:
        if pattern.match(line):
            return pattern.sub(words, line)
    return line


def plain_overlay(overlay: Overlay) -> Overlay:
    def lines(texts: list[str]) -> list[str]:
        return [plain_line(t) for t in texts]

    return replace(
        overlay,
        top_left=lines(overlay.top_left),
        top_right=lines(overlay.top_right),
        bottom_left=lines(overlay.bottom_left),
        bottom_right=lines(overlay.bottom_right),
    )


def plain_chat(text: str) -> str:
    def extent(match: re.Match) -> str:
        x1, x2, y1, y2, z1, z2 = (float(v) for v in match.groups())
        return (
            f"Extent: {abs(x2 - x1):.0f} × {abs(y2 - y1):.0f} × {abs(z2 - z1):.0f} mm "
            "(side to side × front to back × head to foot)"
        )

    text = _EXTENT.sub(extent, text)
    text = _PIXEL_SIZE.sub("", text)
    return _WHERE.sub(r"image \1", text)
