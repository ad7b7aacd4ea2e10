"""DICOM reading on real files: what a scan reports about odd stacks, and splitting series."""

from __future__ import annotations

import os
import random
import shutil

import numpy as np
import pydicom
import pytest

from birdview.core.io.dicom import load_dicom, scan_dicom
from tests.core.dicom_files import DATA, MR_DIR, files_in, only_entry

pytestmark = pytest.mark.timeout(60)


def _copy_mr(tmp_path, edit=None, skip=()) -> list[str]:
    """The dcm4che MR series copied to ``tmp_path``, each file optionally edited by pydicom."""
    paths = []
    for index, path in enumerate(files_in(MR_DIR)):
        if index in skip:
            continue
        target = str(tmp_path / os.path.basename(path))
        if edit is None:
            shutil.copy(path, target)
        else:
            ds = pydicom.dcmread(path)
            edit(index, ds)
            ds.save_as(target)
        paths.append(target)
    return paths


def _mr_rank(index: int) -> int:
    """Where file ``index`` (name order) sits along the stack: the names are not in order."""
    return _MR_RANKS[index]


def _ranks() -> list[int]:
    files = files_in(MR_DIR)
    ipp_y = [
        float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[1]) for f in files
    ]
    order = np.argsort(ipp_y)
    ranks = [0] * len(files)
    for rank, index in enumerate(order):
        ranks[index] = rank
    return ranks


_MR_RANKS = _ranks()


# -- warnings -------------------------------------------------------------------------------


def _warnings(paths: list[str]) -> list[str]:
    entry = only_entry(paths)
    volume = load_dicom(entry)
    assert volume.warnings == entry.warnings
    return list(entry.warnings)


def test_clean_series_has_no_warnings(tmp_path):
    assert _warnings(_copy_mr(tmp_path)) == []


def test_a_dropped_middle_slice_is_reported_missing(tmp_path):
    warnings = _warnings(_copy_mr(tmp_path, skip={7}))
    assert len(warnings) == 1
    assert "missing" in warnings[0] and "1 slice" in warnings[0]


def _shift(offset_mm):
    """An edit that moves slice ``index`` by ``offset_mm(index)`` (an (x, y, z) in mm)."""

    def edit(index, ds):
        moved = zip(ds.ImagePositionPatient, offset_mm(index), strict=True)
        ds.ImagePositionPatient = [float(v) + d for v, d in moved]

    return edit


def test_sheared_positions_are_reported_as_gantry_tilt(tmp_path):
    # The MR stacks along y in 2 mm steps; drifting 0.5 mm in x per slice is a 14.04° tilt.
    warnings = _warnings(_copy_mr(tmp_path, edit=_shift(lambda k: (0.5 * _mr_rank(k), 0, 0))))
    assert len(warnings) == 1
    assert "tilt" in warnings[0] and "14.0°" in warnings[0]


def test_uneven_spacing_is_reported_with_its_range(tmp_path):
    # Slices from the 9th on move 0.6 mm further: one step of 2.6 mm among 2 mm steps.
    warnings = _warnings(
        _copy_mr(tmp_path, edit=_shift(lambda k: (0, 0.6 * (_mr_rank(k) >= 8), 0)))
    )
    assert len(warnings) == 1
    assert "uneven" in warnings[0] and "2.00 mm" in warnings[0] and "2.60 mm" in warnings[0]


def test_duplicate_positions_are_reported(tmp_path):
    paths = _copy_mr(tmp_path)
    ds = pydicom.dcmread(paths[5])
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(str(tmp_path / "copy-of-6"))
    warnings = _warnings([*paths, str(tmp_path / "copy-of-6")])
    assert any("duplicate positions" in w for w in warnings)


def test_a_copied_file_is_ignored_once(tmp_path):
    paths = _copy_mr(tmp_path)
    shutil.copy(paths[0], tmp_path / "same-instance-again")
    entry = only_entry([*paths, str(tmp_path / "same-instance-again")])
    assert entry.n_slices == 16
    assert entry.warnings == ("1 duplicate file(s) ignored",)


def test_mixed_sizes_and_orientations_split_the_series(tmp_path):
    mr = pydicom.dcmread(os.path.join(MR_DIR, "MR01.dcm"))
    ct = pydicom.dcmread(
        os.path.join(DATA, "dicom_multiframe", "CT1_UNC.explicit_little_endian.dcm")
    )
    ct.SeriesInstanceUID = mr.SeriesInstanceUID  # a 512² image in the 256² series
    ct.save_as(str(tmp_path / "big"))

    def tilt_two(index, ds):
        if index in (0, 1):
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]  # axial, in a coronal series

    paths = _copy_mr(tmp_path, edit=tilt_two)
    entries, problems = scan_dicom([*paths, str(tmp_path / "big")])
    assert problems == []
    assert sorted(e.n_slices for e in entries) == [1, 2, 14]
    for entry in entries:
        assert any("mixed sizes" in w for w in entry.warnings)
        assert any("mixed orientations" in w for w in entry.warnings)
        load_dicom(entry)
    assert len({e.key for e in entries}) == 3
    assert len({e.description for e in entries}) == 3


def test_slices_follow_positions_not_instance_numbers(tmp_path):
    numbers = list(range(1, 17))
    random.Random(5).shuffle(numbers)

    def scramble(index, ds):
        ds.InstanceNumber = numbers[index]

    volume = load_dicom(only_entry(_copy_mr(tmp_path, edit=scramble)))
    points = [pydicom.dcmread(s.path).ImagePositionPatient for s in volume.sources]
    along = np.array(points, dtype=float) @ volume.slice_normal
    assert np.allclose(np.diff(along), 2.0, atol=1e-3)
    assert [pydicom.dcmread(s.path).InstanceNumber for s in volume.sources] != sorted(numbers)
