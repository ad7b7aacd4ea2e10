"""Measurements on a slice: ruler, angle, ellipse and rectangle ROIs, and what they measure.

A `Measurement` lives on one slice of one plane, like a `Box`, and its points are image pixel
*edges* of that slice as `geometry.extract_slice` shows it (the top-left pixel spans
[0, 1) × [0, 1)). A ruler has two points, an angle three (the vertex in the middle), an ROI two
opposite corners of its bounding rectangle.

`measure` turns a measurement into numbers on a volume:

- lengths and areas in mm from the size of one displayed pixel of the plane (the reformatted
  planes too), scaled by the study's `Calibration` (Imager Pixel Spacing corrected by the
  Estimated Radiographic Magnification Factor on projection images); in pixels where the
  image has no calibration at all;
- angles in degrees between the arms in mm, so anisotropic pixels do not bend them;
- ROI statistics over the pixels whose centres lie inside the shape: mean, standard deviation
  (of those pixels, numpy's ``ddof=0``), minimum and maximum, in the volume's values (Hounsfield
  units on CT, whose voxels are already rescaled) with the unit the data gives. On a view
  that shows a thick slab (`birdview.core.slab`: MIP, MinIP, average) they are taken over the
  projected pixels the user sees, and the label names the slab ("MIP 10.0 mm").
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, replace

import numpy as np

from birdview.core import geometry
from birdview.core.geometry import Plane
from birdview.core.measure_calibration import Calibration, calibration_of
from birdview.core.slab import Slab, slab_image
from birdview.core.volume import Volume

__all__ = [
    "ANNOTATION_KINDS",
    "KINDS",
    "ROI_KINDS",
    "Measured",
    "Measurement",
    "measure",
    "roi_mask",
]

# Arrows and text notes measure nothing; they share the set, its undo, its file and its
# editing so that everything the user draws has one history (see birdview.core.annotations).
ANNOTATION_KINDS = ("arrow", "text")
KINDS = ("ruler", "angle", "ellipse", "rectangle", *ANNOTATION_KINDS)
ROI_KINDS = ("ellipse", "rectangle")
_POINT_COUNTS = {"ruler": 2, "angle": 3, "ellipse": 2, "rectangle": 2, "arrow": 2, "text": 1}

Point = tuple[float, float]


@dataclass(frozen=True)
class Measurement:
    """One measurement drawn on slice ``slice_index`` of ``plane``.

    Attributes:
        kind: one of `KINDS`.
        points_px: image pixel-edge (x, y) points: 2 for a ruler and the ROIs (opposite
            corners), 3 for an angle (arm end, vertex, arm end), 2 for an arrow (tail, tip),
            1 for a text note (where its text starts).
        label: a name the user gave it ("" when none); a text note's text.
    """

    kind: str
    plane: Plane
    slice_index: int
    points_px: tuple[Point, ...]
    label: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"Unable to make a measurement as its kind {self.kind!r} is not one of {KINDS}"
            )
        object.__setattr__(self, "plane", Plane(self.plane))
        index = operator.index(self.slice_index)
        if index < 0:
            raise ValueError(f"Unable to make a measurement on the negative slice {index!r}")
        object.__setattr__(self, "slice_index", index)
        points = tuple((float(x), float(y)) for x, y in self.points_px)
        if len(points) != _POINT_COUNTS[self.kind]:
            raise ValueError(
                f"Unable to make a {self.kind} from {len(points)} points; it takes "
                f"{_POINT_COUNTS[self.kind]}"
            )
        if not all(math.isfinite(v) for p in points for v in p):
            raise ValueError(f"Unable to make a {self.kind} as a point is not finite: {points!r}")
        object.__setattr__(self, "points_px", points)
        object.__setattr__(self, "label", str(self.label))

    @property
    def is_roi(self) -> bool:
        return self.kind in ROI_KINDS

    def edges_px(self) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) of the points' bounding rectangle."""
        xs = [p[0] for p in self.points_px]
        ys = [p[1] for p in self.points_px]
        return (min(xs), min(ys), max(xs), max(ys))

    def moved(self, dx: float, dy: float) -> Measurement:
        """The same measurement shifted by (dx, dy) image pixels."""
        return replace(self, points_px=tuple((x + dx, y + dy) for x, y in self.points_px))

    def with_point(self, n: int, point: Point) -> Measurement:
        """The measurement with point ``n`` moved to ``point`` (a handle dragged)."""
        points = list(self.points_px)
        points[n] = (float(point[0]), float(point[1]))
        return replace(self, points_px=tuple(points))


@dataclass(frozen=True)
class Measured:
    """What a measurement measures. Lengths and areas are in ``calibration.length_unit``
    (mm, or px when the image has no calibration); None where the kind has no such value;
    the statistics are None on colour images and for an ROI holding no pixel centre."""

    calibration: Calibration
    length: float | None = None
    angle_deg: float | None = None
    area: float | None = None
    pixel_count: int = 0
    mean: float | None = None
    sd: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    projection: str = ""  # the slab the statistics were taken on ("MIP 10.0 mm"); "": the slice

    def lines(self) -> list[str]:
        """The label shown beside the measurement: "42.3 mm", "37.5°", "Mean 41.2 HU" …"""
        unit = self.calibration.length_unit
        value_unit = f" {self.calibration.value_unit}" if self.calibration.value_unit else ""
        lines = []
        if self.length is not None:
            lines.append(f"{self.length:.1f} {unit}")
        if self.angle_deg is not None:
            lines.append(f"{self.angle_deg:.1f}°")
        if self.area is not None:
            lines.append(f"Area {_area_text(self.area, unit)}")
        if self.mean is not None:
            if self.projection:
                lines.append(self.projection)
            lines.append(f"Mean {_number(self.mean)}{value_unit}  SD {_number(self.sd)}")
            low, high = _number(self.minimum, whole=True), _number(self.maximum, whole=True)
            lines.append(f"Min {low}  Max {high}{value_unit}")
        if self.length is not None and self.calibration.note:
            lines.append(self.calibration.note)
        return lines


def _number(value: float, *, whole: bool = False) -> str:
    """One decimal (HU, MR signal), whole numbers as such, small values (PET, maps in 0–1)
    with three significant digits."""
    if whole and float(value).is_integer():
        return f"{value:.0f}"
    if value == 0 or abs(value) >= 1:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _area_text(area: float, unit: str) -> str:
    if unit == "mm" and area >= 100:
        return f"{area / 100:.2f} cm²"
    return f"{area:.1f} {unit}²"


def measure(measurement: Measurement, volume: Volume, slab: Slab | None = None) -> Measured:
    """The length, angle, area and ROI statistics of ``measurement`` on ``volume``; the
    statistics over ``slab``'s projection of the slice when one is given and active (what a
    view showing that slab draws), else over the slice itself.

    Raises:
        IndexError: the measurement's slice is not in the volume.
    """
    calibration = calibration_of(volume)
    if measurement.kind in ANNOTATION_KINDS:
        return Measured(calibration)
    w_mm, h_mm = (s * calibration.factor for s in _pixel_size(volume, measurement.plane))
    points = np.asarray(measurement.points_px) * (w_mm, h_mm)
    if measurement.kind == "ruler":
        return Measured(calibration, length=float(np.linalg.norm(points[1] - points[0])))
    if measurement.kind == "angle":
        return Measured(calibration, angle_deg=_angle(points[0] - points[1], points[2] - points[1]))
    x1, y1, x2, y2 = measurement.edges_px()
    area = (x2 - x1) * (y2 - y1) * w_mm * h_mm
    if measurement.kind == "ellipse":
        area *= math.pi / 4
    image = slab_image(volume, measurement.plane, measurement.slice_index, slab)
    mask = roi_mask(measurement, image.shape[:2])
    count = int(mask.sum())
    if volume.is_rgb or count == 0:
        return Measured(calibration, area=area, pixel_count=count)
    values = np.asarray(image, dtype=np.float64)[mask]
    return Measured(
        calibration,
        area=area,
        pixel_count=count,
        mean=float(values.mean()),
        sd=float(values.std()),
        minimum=float(values.min()),
        maximum=float(values.max()),
        projection=slab.label() if slab is not None else "",
    )


def _pixel_size(volume: Volume, plane: Plane) -> tuple[float, float]:
    """(width, height) of one displayed pixel: mm where the volume has a scale, else 1 px."""
    if calibration_of(volume).length_unit == "px":
        return (1.0, 1.0)
    return geometry.pixel_size_mm(volume, plane)


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    if norms == 0:
        return 0.0
    cosine = float(np.dot(a, b)) / norms
    return math.degrees(math.acos(min(1.0, max(-1.0, cosine))))


def roi_mask(measurement: Measurement, shape: tuple[int, int]) -> np.ndarray:
    """Boolean (rows, cols) mask of the pixels whose centres lie inside an ROI (edges count
    as inside).

    Raises:
        ValueError: ``measurement`` is not an ROI.
    """
    if not measurement.is_roi:
        raise ValueError(f"Unable to make a mask of a {measurement.kind} as it is not an ROI")
    rows, cols = shape
    x1, y1, x2, y2 = measurement.edges_px()
    centre_x = np.arange(cols) + 0.5
    centre_y = (np.arange(rows) + 0.5)[:, np.newaxis]
    if measurement.kind == "rectangle":
        return (centre_x >= x1) & (centre_x <= x2) & (centre_y >= y1) & (centre_y <= y2)
    a, b = (x2 - x1) / 2, (y2 - y1) / 2
    if a <= 0 or b <= 0:
        return np.zeros(shape, dtype=bool)
    u = (centre_x - (x1 + a)) / a
    v = (centre_y - (y1 + b)) / b
    return u**2 + v**2 <= 1.0
