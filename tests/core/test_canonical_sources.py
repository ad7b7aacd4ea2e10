"""After reorienting, each voxel still knows the file it came from (the tag browser needs it)."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from birdview.core.geometry import Plane, acquisition_plane, slice_count, to_canonical
from birdview.core.io import load, scan
from tests.conftest import shared


def test_coronal_series_maps_each_coronal_slice_to_its_file():
    raw = load(scan(shared("dcm4che_mr")).entries[0])
    volume = to_canonical(raw)
    assert acquisition_plane(volume) is Plane.CORONAL
    assert volume.source_axis == 1  # coronal slices run along j (posterior)
    centre = np.array(volume.shape[::-1]) // 2
    for j in range(slice_count(volume, Plane.CORONAL)):
        ijk = (int(centre[0]), j, int(centre[2]))
        source = volume.source_at(ijk)
        position = pydicom.dcmread(source.path, stop_before_pixels=True).ImagePositionPatient
        # The file's plane passes through the voxel: same y (anterior-posterior) position.
        assert float(position[1]) == pytest.approx(volume.index_to_lps(ijk)[1], abs=1e-3)


def test_axial_flip_reverses_sources_with_the_slices():
    raw = load(scan(shared("totalseg", "example_ct_dicom")).entries[0])
    flipped = raw.with_changes(
        voxels=raw.voxels[::-1],
        origin_lps_mm=tuple(raw.index_to_lps((0, 0, raw.shape[0] - 1))),
        direction=raw.direction * np.array([1, 1, -1]),
        sources=tuple(reversed(raw.sources)),
    )
    canonical = to_canonical(flipped)
    assert canonical.sources == raw.sources
    np.testing.assert_array_equal(canonical.voxels, raw.voxels)
