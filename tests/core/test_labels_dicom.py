"""DICOM SEG and RTSTRUCT overlays from real files: pydicom-data's liver SEG (placed where
highdicom says its frames are) and pydicom's RT Structure Set (contours filled with the
polygons' area). Their CT series are not shipped, so each study grid here is the one the file
itself describes (its frame of reference, positions and spacing)."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from birdview.core.geometry import Plane
from birdview.core.labels import LabelMismatchError
from birdview.core.labels_dicom import FRAME_OF_REFERENCE_KEY, fill_polygon
from birdview.core.labels_io import open_labels
from birdview.core.labels_overlay import LabelOverlay, render_rgba
from birdview.core.volume import Volume
from tests.core.seg_files import write_sample_seg

SITE = Path(pydicom.__file__).resolve().parents[1]
LIVER_SEG = SITE / "data_store" / "data" / "liver.dcm"  # pydicom-data
RTSTRUCT = Path(pydicom.__file__).parent / "data" / "test_files" / "rtstruct.dcm"

pytestmark = pytest.mark.skipif(
    not (LIVER_SEG.is_file() and RTSTRUCT.is_file()), reason="pydicom test files not installed"
)


def _frame_positions(seg) -> list[np.ndarray]:
    return [
        np.asarray(item.PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        for item in seg.PerFrameFunctionalGroupsSequence
    ]


def seg_grid(seg, *, frame_uid: str | None = None, shift_mm: float = 0.0) -> Volume:
    """An empty study on the grid the SEG's frames describe (axial, +z upwards)."""
    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    row_mm, col_mm = (float(v) for v in measures.PixelSpacing)
    positions = sorted(_frame_positions(seg), key=lambda p: p[2])
    step = float(positions[1][2] - positions[0][2])
    origin = positions[0] + np.array([shift_mm, 0.0, 0.0])
    return Volume(
        np.zeros((len(positions), int(seg.Rows), int(seg.Columns)), dtype=np.int16),
        spacing_mm=(col_mm, row_mm, step),
        origin_lps_mm=tuple(origin),
        modality="CT",
        metadata={FRAME_OF_REFERENCE_KEY: frame_uid or str(seg.FrameOfReferenceUID)},
    )


def test_seg_frames_land_where_highdicom_says():
    seg = hd.seg.segread(str(LIVER_SEG))
    study = seg_grid(seg)
    label_map = open_labels(LIVER_SEG, study)
    assert [(c.value, c.name) for c in label_map.classes] == [(1, "Liver")]
    z0 = study.origin_lps_mm[2]
    for n, position in enumerate(_frame_positions(seg), start=1):
        k = round((position[2] - z0) / study.spacing_mm[2])
        expected = seg.get_stored_frame(n) > 0  # highdicom's own pixels of frame n
        shown = label_map.slice(Plane.AXIAL, k) == 1
        assert expected.sum() > 1000 and np.array_equal(shown, expected)


def test_seg_frames_on_part_of_a_larger_study_land_at_their_offset():
    seg = hd.seg.segread(str(LIVER_SEG))
    grid = seg_grid(seg)
    di, dj, dk = 7, 3, 2  # the study reaches further left, up and down than the SEG
    origin = np.asarray(grid.origin_lps_mm) - np.array(grid.spacing_mm) * (di, dj, dk)
    k, j, i = grid.shape
    study = grid.with_changes(
        voxels=np.zeros((k + 2 * dk, j + 10, i + 20), dtype=np.int16), origin_lps_mm=origin
    )
    placed = np.asarray(open_labels(LIVER_SEG, study).volume.voxels)
    alone = np.asarray(open_labels(LIVER_SEG, grid).volume.voxels)
    assert np.array_equal(placed[dk : dk + k, dj : dj + j, di : di + i], alone)
    assert placed.sum() == alone.sum() > 0


def test_seg_of_another_frame_of_reference_or_grid_is_refused():
    seg = hd.seg.segread(str(LIVER_SEG))
    with pytest.raises(LabelMismatchError, match=r"'liver\.dcm'.*Frame of Reference UID"):
        open_labels(LIVER_SEG, seg_grid(seg, frame_uid="1.2.3.4"))
    with pytest.raises(LabelMismatchError, match=r"'liver\.dcm' frame 1.*does not lie on"):
        open_labels(LIVER_SEG, seg_grid(seg, shift_mm=0.4))
    no_frame = seg_grid(seg).with_changes(metadata={})
    with pytest.raises(LabelMismatchError, match="the study has no Frame of Reference UID"):
        open_labels(LIVER_SEG, no_frame)


def _shoelace_mm2(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def test_rtstruct_contours_fill_their_polygon_area():
    ds = pydicom.dcmread(str(RTSTRUCT), force=True)
    frame_uid = str(ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID)
    spacing = (0.7, 0.9, 10.0)
    study = Volume(
        np.zeros((3, 500, 800), dtype=np.int16),
        spacing_mm=spacing,
        origin_lps_mm=(-270.15, -215.3, -200.0),
        metadata={FRAME_OF_REFERENCE_KEY: frame_uid},
    )
    label_map = open_labels(RTSTRUCT, study)
    (patient,) = label_map.classes  # the isocentres are points: nothing to fill
    assert patient.name == "patient" and patient.colour == (220, 160, 120)
    contours = ds.ROIContourSequence[0].ContourSequence
    for contour in contours:
        points = np.asarray(contour.ContourData, dtype=float).reshape(-1, 3)
        k = round((points[0, 2] - study.origin_lps_mm[2]) / spacing[2])
        filled = int((label_map.slice(Plane.AXIAL, k) == patient.value).sum())
        assert filled * spacing[0] * spacing[1] == pytest.approx(_shoelace_mm2(points), rel=0.01)
    assert len(contours) == study.shape[0]


def test_rtstruct_of_another_frame_of_reference_is_refused():
    study = Volume(np.zeros((3, 10, 10)), metadata={FRAME_OF_REFERENCE_KEY: "1.2.3"})
    with pytest.raises(LabelMismatchError, match=r"'rtstruct\.dcm'.*Frame of Reference UID"):
        open_labels(RTSTRUCT, study)


def test_fill_polygon_counts_pixel_centres_inside_and_cuts_holes():
    square = fill_polygon(np.array([1.5, 5.5, 5.5, 1.5]), np.array([1.5, 1.5, 5.5, 5.5]), (8, 8))
    assert square.sum() == 16 and square[2:6, 2:6].all()
    triangle = fill_polygon(np.array([0.0, 10.0, 0.0]), np.array([0.0, 0.0, 10.0]), (12, 12))
    assert triangle.sum() == pytest.approx(50, abs=11)  # area 50 px², edges half-counted


def test_render_draws_fill_outline_opacity_and_hides_labels():
    seg = hd.seg.segread(str(LIVER_SEG))
    label_map = open_labels(LIVER_SEG, seg_grid(seg))
    labels = label_map.slice(Plane.AXIAL, 1)
    overlay = LabelOverlay()
    overlay.open(label_map)
    fill = render_rgba(labels, overlay)
    assert np.array_equal(fill[..., 3] > 0, labels > 0)
    assert set(np.unique(fill[..., 3])) == {0, round(255 * overlay.opacity)}
    overlay.set_opacity(1.0)
    assert fill[..., 3].max() < render_rgba(labels, overlay)[..., 3].max() == 255
    overlay.set_outline(True)
    outline = render_rgba(labels, overlay)
    edge = outline[..., 3] > 0
    assert 0 < edge.sum() < (labels > 0).sum() / 10 and not (edge & (labels == 0)).any()
    overlay.set_shown(1, False)
    assert not render_rgba(labels, overlay)[..., 3].any()
    with pytest.raises(ValueError, match="not in 0..1"):
        overlay.set_opacity(1.5)


def test_a_seg_made_on_the_sample_ct_lands_on_its_label_map(tmp_path):
    """highdicom writes the bundled label map as a SEG on the sample CT's own files; read back
    over that CT, every segment is on the voxels of its label in the NIfTI file."""
    from birdview.core.geometry import to_canonical
    from birdview.core.io import load, scan
    from birdview.core.resources import sample_ct_dir

    ct = to_canonical(load(scan(sample_ct_dir()).entries[0]))
    names, expected = write_sample_seg(tmp_path / "seg.dcm", ct)
    seg = open_labels(tmp_path / "seg.dcm", ct)
    assert [c.name for c in seg.classes] == names
    assert np.array_equal(np.asarray(seg.volume.voxels), expected)


def test_a_damaged_seg_is_one_message_naming_the_file(tmp_path):
    seg = hd.seg.segread(str(LIVER_SEG))
    study = seg_grid(seg)
    damaged = pydicom.dcmread(str(LIVER_SEG))
    del damaged.PerFrameFunctionalGroupsSequence[1].PlanePositionSequence
    damaged.save_as(tmp_path / "damaged.dcm")
    with pytest.raises(ValueError, match=r"Unable to read 'damaged\.dcm' as a DICOM SEG"):
        open_labels(tmp_path / "damaged.dcm", study)
    empty = pydicom.dcmread(str(LIVER_SEG))
    empty.SegmentSequence = []
    empty.save_as(tmp_path / "empty.dcm")
    with pytest.raises(ValueError, match=r"Unable to read 'empty\.dcm' as a DICOM SEG"):
        open_labels(tmp_path / "empty.dcm", study)
