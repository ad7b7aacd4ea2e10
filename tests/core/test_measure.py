"""Measurements on real studies, checked against values computed here from the DICOM headers
and pixels with pydicom and numpy alone (never from BirdView's own geometry): ruler lengths on
every plane, angles, ROI statistics in Hounsfield units, the calibration of a real CR
radiograph (Imager Pixel Spacing at the detector, or corrected by the Estimated Radiographic
Magnification Factor), an image without spacing in pixels, and the undo history."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest

from birdview.core import geometry
from birdview.core.io import load, scan
from birdview.core.measure import Measurement, measure, roi_mask
from birdview.core.measure_calibration import calibration_of
from birdview.core.measure_set import MeasurementSet
from birdview.core.slab import Slab
from birdview.core.volume import Volume
from tests.conftest import REPO, shared

CT_DIR = REPO / "resources" / "samples" / "totalseg_ct"
# A real computed radiograph from pydicom's test files: Imager Pixel Spacing 0.1 mm, no Pixel
# Spacing, no magnification factor.
CR_FILE = (
    Path(pydicom.data.__file__).parent
    / "test_files"
    / "dicomdirtests"
    / "77654033"
    / "CR1"
    / "6154"
)


@cache
def study(path: str) -> Volume:
    return geometry.to_canonical(load(scan(path).entries[0]))


def ct() -> Volume:
    return study(str(CT_DIR))


class CtTruth:
    """The sample CT as pydicom reads it: slices sorted from the feet up (as the canonical
    volume's k runs), each voxel's patient position from its own file's Image Position and
    Orientation and Pixel Spacing, and its Hounsfield value from Rescale Slope/Intercept."""

    def __init__(self, folder: Path = CT_DIR) -> None:
        files = [p for p in folder.iterdir() if p.name.startswith("CT.")]
        headers = [pydicom.dcmread(p) for p in files]
        headers.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
        self.headers = headers
        iop = np.asarray(headers[0].ImageOrientationPatient, dtype=float)
        # The canonical axial view shows the file's rows and columns as stored only when the
        # rows run left→right and the columns front→back; the sample CT is written that way.
        assert np.allclose(iop, [1, 0, 0, 0, 1, 0])
        self.row_dir, self.col_dir = iop[:3], iop[3:]
        self.row_mm, self.col_mm = (float(v) for v in headers[0].PixelSpacing)

    def position(self, i: float, j: float, k: int) -> np.ndarray:
        """Patient position (mm) of column i, row j of the k-th slice from the feet."""
        ds = self.headers[k]
        origin = np.asarray(ds.ImagePositionPatient, dtype=float)
        return origin + i * self.col_mm * self.row_dir + j * self.row_mm * self.col_dir

    def hounsfield(self, k: int) -> np.ndarray:
        ds = self.headers[k]
        return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


@cache
def ct_truth() -> CtTruth:
    return CtTruth()


def ellipse_mask(shape, x1, y1, x2, y2) -> np.ndarray:
    """Pixels whose centres are inside the ellipse inscribed in the edges, one by one."""
    rows, cols = shape
    cx, cy, a, b = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
    mask = np.zeros(shape, dtype=bool)
    for r in range(rows):
        for c in range(cols):
            mask[r, c] = ((c + 0.5 - cx) / a) ** 2 + ((r + 0.5 - cy) / b) ** 2 <= 1
    return mask


# -- lengths --------------------------------------------------------------------------------


def test_axial_ruler_equals_the_distance_from_the_dicom_headers():
    volume, truth = ct(), ct_truth()
    k = 7
    # Pixel centres of voxels (40, 60) and (300, 410): edges + 0.5.
    ruler = Measurement("ruler", "axial", k, ((40.5, 60.5), (300.5, 410.5)))
    expected = np.linalg.norm(truth.position(300, 410, k) - truth.position(40, 60, k))
    got = measure(ruler, volume)
    assert got.calibration.length_unit == "mm"
    assert abs(got.length - expected) < 1e-6
    assert got.lines()[0] == f"{expected:.1f} mm"


@pytest.mark.parametrize("plane", ["coronal", "sagittal"])
def test_ruler_across_slices_uses_the_slice_positions(plane):
    """A vertical ruler on a reformatted plane runs from the top slice to the bottom one:
    its length is the distance between the two files' Image Positions."""
    volume, truth = ct(), ct_truth()
    top_row, bottom_row = 0, volume.shape[0] - 1  # coronal/sagittal rows count down from the head
    ruler = Measurement("ruler", plane, 100, ((20.5, top_row + 0.5), (20.5, bottom_row + 0.5)))
    first = np.asarray(truth.headers[0].ImagePositionPatient, dtype=float)
    last = np.asarray(truth.headers[-1].ImagePositionPatient, dtype=float)
    expected = float(np.linalg.norm(last - first))
    assert abs(measure(ruler, volume).length - expected) < 1e-6


def test_sagittal_diagonal_keeps_anisotropic_pixels_apart():
    volume, truth = ct(), ct_truth()
    n = volume.shape[0]
    # From voxel (i=256, j=100) on the top slice to (256, 300) on the 5th from the bottom.
    ruler = Measurement("ruler", "sagittal", 256, ((100.5, 0.5), (300.5, n - 5 + 0.5)))
    expected = np.linalg.norm(truth.position(256, 300, 4) - truth.position(256, 100, n - 1))
    assert abs(measure(ruler, volume).length - expected) < 1e-6


# -- angles ---------------------------------------------------------------------------------


def test_angle_of_a_known_construction_on_anisotropic_pixels():
    """Arms built in mm: one along +x, one at 30° — on the coronal plane (0.98 × 2 mm pixels)
    the pixel angle is not 30°, the measured one is."""
    volume, truth = ct(), ct_truth()
    dz = abs(
        float(truth.headers[1].ImagePositionPatient[2])
        - float(truth.headers[0].ImagePositionPatient[2])
    )
    vertex = (100.0, 15.0)
    along = (vertex[0] + 40 / truth.col_mm, vertex[1])
    up_mm = (20 * math.cos(math.radians(30)), 20 * math.sin(math.radians(30)))
    slanted = (vertex[0] + up_mm[0] / truth.col_mm, vertex[1] - up_mm[1] / dz)
    angle = Measurement("angle", "coronal", 256, (along, vertex, slanted))
    assert measure(angle, volume).angle_deg == pytest.approx(30.0, abs=1e-6)
    right = Measurement("angle", "axial", 3, ((110, 50), (10, 50), (10, 10)))
    assert measure(right, volume).angle_deg == pytest.approx(90.0, abs=1e-9)
    straight = Measurement("angle", "axial", 3, ((0, 0), (10, 10), (20, 20)))
    assert measure(straight, volume).angle_deg == pytest.approx(180.0, abs=1e-6)


# -- ROI statistics -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ellipse", "rectangle"])
def test_roi_hounsfield_statistics_equal_numpy_on_the_same_pixels(kind):
    volume, truth = ct(), ct_truth()
    k = 11
    x1, y1, x2, y2 = 201.3, 240.0, 262.7, 281.5
    roi = Measurement(kind, "axial", k, ((x2, y2), (x1, y1)))  # corners in either order
    hu = truth.hounsfield(k)
    if kind == "ellipse":
        mask = ellipse_mask(hu.shape, x1, y1, x2, y2)
        area = math.pi * (x2 - x1) / 2 * (y2 - y1) / 2 * truth.col_mm * truth.row_mm
    else:
        mask = np.zeros(hu.shape, dtype=bool)
        mask[240:282, 201:263] = True  # centres 201.5..262.5 and 240.5..281.5 (an edge) are in
        area = (x2 - x1) * (y2 - y1) * truth.col_mm * truth.row_mm
    assert np.array_equal(roi_mask(roi, hu.shape), mask)
    got = measure(roi, volume)
    values = hu[mask]
    assert got.pixel_count == mask.sum() > 1000
    assert got.mean == pytest.approx(values.mean(), abs=1e-9)
    assert got.sd == pytest.approx(values.std(), abs=1e-9)
    assert (got.minimum, got.maximum) == (values.min(), values.max())
    assert got.area == pytest.approx(area)
    assert got.calibration.value_unit == "HU"
    assert any(line.startswith(f"Mean {values.mean():.1f} HU") for line in got.lines())


def test_roi_on_a_reformatted_plane_reads_the_same_voxels():
    volume, truth = ct(), ct_truth()
    n = volume.shape[0]
    roi = Measurement("rectangle", "coronal", 250, ((100, 2), (160, 9)))
    # Coronal rows count down from the head: row r is slice n - 1 - r from the feet.
    expected = np.array(
        [[truth.hounsfield(n - 1 - r)[250, c] for c in range(100, 160)] for r in range(2, 9)]
    )
    got = measure(roi, volume)
    assert got.pixel_count == expected.size
    assert got.mean == pytest.approx(expected.mean())
    assert (got.minimum, got.maximum) == (expected.min(), expected.max())


@pytest.mark.parametrize(
    ("mode", "reduce"), [("mip", np.max), ("minip", np.min), ("average", np.mean)]
)
def test_roi_on_a_slab_reads_the_projection_shown_not_the_centre_slice(mode, reduce):
    """On a 10 mm slab of the 2 mm sample CT the statistics are over the projection of the
    five files k-2..k+2 (pydicom and numpy), and the label names the slab."""
    volume, truth = ct(), ct_truth()
    k = 11
    x1, y1, x2, y2 = 201.3, 240.0, 262.7, 281.5
    roi = Measurement("ellipse", "axial", k, ((x1, y1), (x2, y2)))
    projected = reduce(np.stack([truth.hounsfield(n) for n in range(k - 2, k + 3)]), axis=0)
    values = projected[ellipse_mask(projected.shape, x1, y1, x2, y2)]
    got = measure(roi, volume, Slab(mode, 10.0))
    assert got.pixel_count == values.size
    assert got.mean == pytest.approx(values.mean(), abs=1e-3)
    assert got.sd == pytest.approx(values.std(), abs=1e-3)
    assert (got.minimum, got.maximum) == (
        pytest.approx(values.min(), abs=1e-3),
        pytest.approx(values.max(), abs=1e-3),
    )
    centre = measure(roi, volume)
    assert got.mean != pytest.approx(centre.mean, abs=0.5)  # not the centre slice's values
    name = {"mip": "MIP", "minip": "MinIP", "average": "Average"}[mode]
    assert got.projection == f"{name} 10.0 mm" and got.projection in got.lines()
    assert centre.projection == "" and measure(roi, volume, Slab()).lines() == centre.lines()


def test_roi_statistics_of_an_mr_have_no_hounsfield_unit():
    volume = study(str(REPO / "resources" / "samples" / "dcm4che_mr"))
    roi = Measurement("rectangle", geometry.acquisition_plane(volume), 8, ((50, 50), (80, 90)))
    got = measure(roi, volume)
    assert got.calibration.value_unit == ""
    assert got.mean is not None and "HU" not in " ".join(got.lines())


# -- calibration ----------------------------------------------------------------------------


def test_cr_lengths_are_stated_at_the_detector():
    header = pydicom.dcmread(CR_FILE, stop_before_pixels=True)
    assert "PixelSpacing" not in header
    assert "EstimatedRadiographicMagnificationFactor" not in header
    row_mm, col_mm = (float(v) for v in header.ImagerPixelSpacing)
    volume = study(str(CR_FILE))
    ruler = Measurement("ruler", "axial", 0, ((1, 2), (13, 7)))
    got = measure(ruler, volume)
    assert got.length == pytest.approx(math.hypot(12 * col_mm, 5 * row_mm))
    assert got.calibration.source.startswith("Imager Pixel Spacing at the detector")
    assert "at detector" in got.lines()[-1]


def test_cr_lengths_are_corrected_by_the_magnification_factor(tmp_path):
    ds = pydicom.dcmread(CR_FILE)
    ds.EstimatedRadiographicMagnificationFactor = 1.25
    path = tmp_path / "cr-ermf.dcm"
    ds.save_as(path)
    volume = study(str(path))
    row_mm, col_mm = (float(v) for v in ds.ImagerPixelSpacing)
    ruler = Measurement("ruler", "axial", 0, ((0, 0), (10, 0)))
    got = measure(ruler, volume)
    assert got.length == pytest.approx(10 * col_mm / 1.25)
    assert "Estimated Radiographic Magnification Factor 1.25" in got.calibration.source
    assert got.lines()[-1] == "corrected for magnification ×1.25"
    roi = measure(Measurement("rectangle", "axial", 0, ((0, 0), (10, 4))), volume)
    assert roi.area == pytest.approx(10 * col_mm / 1.25 * 4 * row_mm / 1.25)


def test_an_image_without_spacing_measures_in_pixels():
    volume = study(str(shared("biomedparse_demo", "demo", "00_CT_lung.png")))
    got = measure(Measurement("ruler", "axial", 0, ((0, 0), (30, 40))), volume)
    assert got.calibration.length_unit == "px"
    assert got.length == pytest.approx(50.0)
    assert got.lines() == ["50.0 px", "uncalibrated"]


def test_calibration_of_ct_and_nifti():
    assert calibration_of(ct()).source == "Pixel Spacing"
    assert calibration_of(ct()).note == ""
    nifti = study(str(shared("totalseg", "example_ct_sm.nii.gz")))
    assert calibration_of(nifti).length_unit == "mm"
    assert calibration_of(nifti).value_unit == "HU"


# -- the model ------------------------------------------------------------------------------


def test_invalid_measurements_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="Unable to make a angle from 2 points; it takes 3"):
        Measurement("angle", "axial", 0, ((0, 0), (1, 1)))
    with pytest.raises(ValueError, match="kind 'circle' is not one of"):
        Measurement("circle", "axial", 0, ((0, 0), (1, 1)))
    with pytest.raises(ValueError, match="not finite"):
        Measurement("ruler", "axial", 0, ((0, float("nan")), (1, 1)))
    with pytest.raises(ValueError, match="not an ROI"):
        roi_mask(Measurement("ruler", "axial", 0, ((0, 0), (1, 1))), (4, 4))


def test_undo_redo_covers_add_edit_delete_and_clear():
    seen = []
    items = MeasurementSet()
    items.changed.connect(lambda: seen.append(len(items)))
    a = Measurement("ruler", "axial", 0, ((0, 0), (5, 5)))
    b = Measurement("ellipse", "axial", 0, ((1, 1), (9, 6)))
    items.add(a)
    items.add(b)
    assert items.selected == 1
    items.replace(0, a.moved(2, 3))
    items.select(0)
    assert items.remove_selected() and items.items == (b,)
    items.clear()
    assert items.items == ()
    assert items.undo() and items.items == (b,)
    assert items.undo() and items.items == (a.moved(2, 3), b)
    assert items.undo() and items.items == (a, b)
    assert items.redo() and items.items == (a.moved(2, 3), b)
    items.add(a)  # a new change forgets what could be redone
    assert not items.can_redo and not items.redo()
    assert seen == [1, 2, 2, 1, 0, 1, 2, 2, 2, 3]
    items.reset("content-sha256:" + "0" * 64)
    assert items.items == () and not items.can_undo


@pytest.mark.parametrize(
    ("pixel_spacing", "calibration_type", "note"),
    [
        ([0.1, 0.1], None, "at detector (not magnification-corrected)"),  # a copy of the imager's
        ([0.08, 0.08], None, "calibrated Pixel Spacing"),
        ([0.1, 0.1], "GEOMETRY", "calibrated (geometry)"),
    ],
)
def test_cr_pixel_spacing_counts_as_calibrated_unless_it_repeats_the_detector(
    tmp_path, pixel_spacing, calibration_type, note
):
    ds = pydicom.dcmread(CR_FILE)
    ds.PixelSpacing = pixel_spacing
    if calibration_type:
        ds.PixelSpacingCalibrationType = calibration_type
    path = tmp_path / "cr-calibrated.dcm"
    ds.save_as(path)
    volume = study(str(path))
    got = measure(Measurement("ruler", "axial", 0, ((0, 0), (10, 0))), volume)
    assert got.length == pytest.approx(10 * pixel_spacing[1])
    assert got.lines()[-1] == note
