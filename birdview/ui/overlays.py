"""What a slice view writes over its image: corner texts, orientation letters, crosshair.

`overlay_for` turns the session into plain strings (testable without painting); `paint_overlay`
and `paint_crosshair` draw them in viewport coordinates, legible on any image (dark outline).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen

from birdview.core import geometry
from birdview.core.geometry import Plane
from birdview.core.session import Session
from birdview.core.volume import SliceSource, Volume

__all__ = [
    "PLANE_COLORS",
    "Overlay",
    "Placed",
    "layout_overlay",
    "overlay_for",
    "paint_crosshair",
    "paint_overlay",
]

# Slicer's convention: axial red, sagittal yellow, coronal green.
PLANE_COLORS = {
    Plane.AXIAL: QColor(230, 80, 80),
    Plane.CORONAL: QColor(90, 200, 90),
    Plane.SAGITTAL: QColor(230, 200, 70),
}
# In each view, the plane shown by its vertical and by its horizontal crosshair line.
_VERTICAL_LINE = {
    Plane.AXIAL: Plane.SAGITTAL,
    Plane.CORONAL: Plane.SAGITTAL,
    Plane.SAGITTAL: Plane.CORONAL,
}
_HORIZONTAL_LINE = {
    Plane.AXIAL: Plane.CORONAL,
    Plane.CORONAL: Plane.AXIAL,
    Plane.SAGITTAL: Plane.AXIAL,
}

_TEXT = QColor(235, 235, 225)
_LETTER = QColor(255, 210, 120)
_OUTLINE = QColor(0, 0, 0, 200)
_MARGIN = 6


@dataclass
class Overlay:
    """The strings of one view; each corner is a list of lines, top to bottom."""

    top_left: list[str] = field(default_factory=list)
    top_right: list[str] = field(default_factory=list)
    bottom_left: list[str] = field(default_factory=list)
    bottom_right: list[str] = field(default_factory=list)
    letters: dict[str, str] | None = None
    title: str = ""  # drawn above the top-left lines, in ``title_color``
    title_color: QColor | None = None


def overlay_for(
    session: Session, plane: Plane, zoom: float, *, compact: bool = False, anonymise: bool = False
) -> Overlay:
    """The overlay of ``plane``'s view of the session; ``zoom`` is screen px per image px.
    ``anonymise`` (presenter mode) leaves out the patient's name, ID and the study date."""
    volume = session.volume
    if volume is None:
        return Overlay()
    index = session.slice_index(plane)
    count = session.slice_count(plane)
    source = geometry.slice_source(volume, plane, index)
    slice_line = geometry.slice_label(volume, plane, index, compact=compact)
    if compact:
        return Overlay(
            title=plane.value.capitalize(),
            title_color=PLANE_COLORS[plane],
            bottom_left=[slice_line],
            letters=geometry.orientation_letters(volume, plane),
        )
    meta = volume.metadata
    entry = session.entry
    description = meta.get("series_description") or (entry.description if entry else "")
    window = session.window
    name = _person_name(meta.get("patient_name"))
    if not name and entry is not None and entry.kind == "dicom":
        name = "(no patient name)"  # say so: identity on every view is a safety requirement
    anonymise = anonymise or session.phi_hidden
    identity = [] if anonymise else _nonempty(name, _text(meta.get("patient_id")))
    return Overlay(
        top_left=identity,
        top_right=_nonempty(
            "" if anonymise else _date(meta.get("study_date")),
            _text(description),
            f"{volume.modality} · {plane.value}" if volume.has_geometry else volume.modality,
        ),
        bottom_left=_nonempty(slice_line, _position_line(volume, plane, index, count, source)),
        bottom_right=_nonempty(window.label() if window else "", f"Zoom {zoom * 100:.0f}%"),
        letters=geometry.orientation_letters(volume, plane),
    )


@dataclass(frozen=True)
class Placed:
    """One line of overlay text where it goes: ``rect`` in viewport pixels."""

    text: str
    rect: QRectF
    font: QFont
    color: QColor


def layout_overlay(rect: QRectF, overlay: Overlay, font: QFont) -> list[Placed]:
    """Where each corner line and letter goes so that none overlap, however small the view:
    corner lines are elided to their half of the width less the top/bottom letter, and each
    corner keeps only the lines that fit between its edge and the side letters."""
    metrics = QFontMetricsF(font)
    line_h = metrics.height()
    bold = _letter_font(font)
    bold_m = QFontMetricsF(bold)
    letter_w = max(
        (bold_m.horizontalAdvance(t) for t in (overlay.letters or {}).values()), default=0
    )
    letter_h = bold_m.height() if overlay.letters else 0.0
    half_w = (rect.width() - letter_w) / 2 - 2 * _MARGIN
    # A corner's lines stop before the side letters (mid-height) or, without letters, at the
    # middle: the top and bottom corners then never meet.
    rows = max(0, int((rect.height() / 2 - letter_h / 2 - _MARGIN - 2) // line_h))
    placed: list[Placed] = []
    top_left = ([overlay.title] if overlay.title else []) + overlay.top_left
    corners = (
        (top_left, False, False),
        (overlay.top_right, True, False),
        (overlay.bottom_left, False, True),
        (overlay.bottom_right, True, True),
    )
    for lines, right, bottom in corners:
        shown = lines[:rows]  # the first line of each corner matters most
        for n, line in enumerate(shown):
            text = metrics.elidedText(line, Qt.TextElideMode.ElideRight, max(half_w, 0.0))
            if not text:
                continue
            width = metrics.horizontalAdvance(text)
            x = rect.right() - _MARGIN - width if right else rect.left() + _MARGIN
            y = (
                rect.bottom() - _MARGIN - (len(shown) - n) * line_h
                if bottom
                else rect.top() + _MARGIN + n * line_h
            )
            is_title = overlay.title and not right and not bottom and n == 0
            color = (overlay.title_color or _TEXT) if is_title else _TEXT
            placed.append(Placed(text, QRectF(x, y, width, line_h), font, color))
    centre = rect.center()
    for edge, letter in (overlay.letters or {}).items():
        width = bold_m.horizontalAdvance(letter)
        x = {"left": rect.left() + _MARGIN, "right": rect.right() - _MARGIN - width}.get(
            edge, centre.x() - width / 2
        )
        y = {"top": rect.top() + _MARGIN, "bottom": rect.bottom() - _MARGIN - letter_h}.get(
            edge, centre.y() - letter_h / 2
        )
        placed.append(Placed(letter, QRectF(x, y, width, letter_h), bold, _LETTER))
    return placed


def paint_overlay(painter: QPainter, rect: QRectF, overlay: Overlay, font: QFont) -> None:
    """Draw the corner texts and the letters at the mid-edges of ``rect`` (viewport pixels),
    placed by `layout_overlay`."""
    for item in layout_overlay(rect, overlay, font):
        ascent = QFontMetricsF(item.font).ascent()
        baseline = QPointF(item.rect.left(), item.rect.top() + ascent)
        _outlined_text(painter, baseline, item.text, item.font, item.color)


def _letter_font(font: QFont) -> QFont:
    bold = QFont(font)
    bold.setBold(True)
    if font.pixelSize() > 0:
        bold.setPixelSize(round(font.pixelSize() * 1.2))
    else:
        bold.setPointSizeF(font.pointSizeF() * 1.2)
    return bold


def paint_hint(painter: QPainter, rect: QRectF, text: str, font: QFont) -> None:
    """Centred grey text for an empty view: what the user can do next."""
    painter.setFont(font)
    painter.setPen(QColor(150, 150, 150))
    painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), text)


def paint_crosshair(painter: QPainter, rect: QRectF, plane: Plane, at: QPointF, gap: float) -> None:
    """Full-width lines through ``at`` (viewport pixels), coloured by the plane each shows,
    leaving a ``gap`` around the point so the voxel under the cursor stays visible."""
    vertical = QPen(PLANE_COLORS[_VERTICAL_LINE[plane]], 1)
    horizontal = QPen(PLANE_COLORS[_HORIZONTAL_LINE[plane]], 1)
    vertical.setCosmetic(True)
    horizontal.setCosmetic(True)
    painter.setPen(vertical)
    painter.drawLine(QPointF(at.x(), rect.top()), QPointF(at.x(), at.y() - gap))
    painter.drawLine(QPointF(at.x(), at.y() + gap), QPointF(at.x(), rect.bottom()))
    painter.setPen(horizontal)
    painter.drawLine(QPointF(rect.left(), at.y()), QPointF(at.x() - gap, at.y()))
    painter.drawLine(QPointF(at.x() + gap, at.y()), QPointF(rect.right(), at.y()))


def paint_frame(painter: QPainter, rect: QRectF, plane: Plane, active: bool) -> None:
    """A thin border in the plane's colour (brighter on the focused view)."""
    color = QColor(PLANE_COLORS[plane])
    color.setAlpha(255 if active else 110)
    # Four filled strips, not a stroked rectangle: stroking the whole view's outline cost
    # ~2 ms a paint, most of a cine frame's drawing time.
    width = 2.0 if active else 1.0
    for strip in (
        QRectF(rect.left(), rect.top(), rect.width(), width),
        QRectF(rect.left(), rect.bottom() - width, rect.width(), width),
        QRectF(rect.left(), rect.top(), width, rect.height()),
        QRectF(rect.right() - width, rect.top(), width, rect.height()),
    ):
        painter.fillRect(strip, color)


def _outlined_text(
    painter: QPainter, baseline: QPointF, text: str, font: QFont, color: QColor
) -> None:
    """Text with a one-pixel dark outline (four offset copies): legible on any image, and
    far cheaper than stroking a text path."""
    painter.setFont(font)
    painter.setPen(_OUTLINE)
    for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        painter.drawText(baseline + QPointF(dx, dy), text)
    painter.setPen(color)
    painter.drawText(baseline, text)


def _position_line(
    volume: Volume, plane: Plane, index: int, count: int, source: SliceSource | None
) -> str:
    """The header's Slice Location of an acquired slice, else the slice's patient coordinate
    along the plane's normal (LPS: z up, y back, x left)."""
    if source is not None and source.location_mm is not None:
        return f"Loc {source.location_mm:.1f} mm"
    if not volume.has_geometry or count <= 1:
        return ""
    return f"Pos {geometry.slice_position_mm(volume, plane, index):.1f} mm"


def _nonempty(*lines: str) -> list[str]:
    return [line for line in lines if line]


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def _person_name(value: object) -> str:
    """DICOM "Family^Given^Middle" as "Family, Given Middle"."""
    parts = [p for p in _text(value).split("^") if p]
    if len(parts) <= 1:
        return "".join(parts)
    return f"{parts[0]}, {' '.join(parts[1:])}"


def _date(value: object) -> str:
    """DICOM "YYYYMMDD" as "YYYY-MM-DD"; anything else as given."""
    text = _text(value)
    if len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text
