"""Window/level maths: the presets radiologists know, and the LUT fast path."""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest

from birdview.core.display import (
    PRESETS,
    Window,
    apply_window,
    auto_window,
    default_window,
    presets_for,
)
from tests.conftest import shared

# (width, level) as radiologists write them; a viewer once shipped lung as 150/-600.
EXPECTED_W_L = [
    ("CT brain", 80, 40),
    ("Subdural", 200, 75),
    ("Lung", 1500, -600),
    ("Soft tissue", 400, 40),
    ("Abdomen", 400, 50),
    ("Liver", 150, 30),
    ("Bone", 1800, 400),
]


def test_presets_are_the_standard_windows_in_key_order():
    assert [(name, w.width, w.center) for name, w in PRESETS.items()] == EXPECTED_W_L


def test_presets_only_for_ct():
    assert presets_for("CT") == PRESETS
    assert presets_for("MR") == {}


def test_ct_without_a_header_window_opens_in_soft_tissue():
    """Percentiles of a CT run from the air to the bone (about W 1300 / L -380 on the NIfTI
    sample) and wash the organs out; the header's window still wins where there is one."""
    from birdview.core.io.nifti import load_nifti, scan_nifti

    ct = load_nifti(scan_nifti(str(shared("totalseg", "example_ct_sm.nii.gz"))))
    assert ct.modality == "CT" and ct.window is None
    assert default_window(ct) == PRESETS["Soft tissue"] == Window(40, 400)
    assert auto_window(ct.voxels).width > 1000  # what it opened with before
    assert default_window(ct.with_changes(window=(50.0, 350.0))) == Window(50, 350)
    mr = ct.with_changes(modality="MR")
    assert default_window(mr) == auto_window(mr.voxels)


@pytest.fixture(scope="module")
def ct_slice() -> np.ndarray:
    ds = pydicom.dcmread(shared("dicom_multiframe", "CT1_UNC.explicit_little_endian.dcm"))
    return pydicom.pixels.apply_rescale(ds.pixel_array, ds).astype(np.int16)


def test_lookup_table_path_matches_float_path(ct_slice):
    window = PRESETS["Abdomen"]
    fast = apply_window(ct_slice, window)
    slow = apply_window(ct_slice.astype(np.float32), window)
    assert fast.dtype == np.uint8 and fast.shape == ct_slice.shape
    assert np.abs(fast.astype(int) - slow.astype(int)).max() <= 1


def test_window_edges_saturate(ct_slice):
    window = Window(40, 400)
    out = apply_window(np.array([-161, -160, 40, 240, 241, 3000], dtype=np.int16), window)
    assert out[0] == 0 and out[1] == 0
    assert out[2] in (127, 128)
    assert out[4] == 255 and out[5] == 255


def test_rgb_images_are_windowed_per_channel():
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    out = apply_window(rgb, Window(100, 100))
    assert out.shape == rgb.shape
    assert (out[..., 0] == 255).all() and (out[..., 1] == 0).all()


def test_auto_window_spans_the_percentiles(ct_slice):
    window = auto_window(ct_slice)
    low, high = np.percentile(ct_slice, [0.5, 99.5])
    assert window.low == pytest.approx(low) and window.high == pytest.approx(high)
    assert auto_window(np.zeros((3, 3))).width > 0


def test_nan_and_infinite_values_show_as_black_or_white():
    values = np.array([np.nan, -np.inf, np.inf, 40.0], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value encountered in cast"
        out = apply_window(values, Window(40, 400))
    assert out.tolist()[:3] == [0, 0, 255] and out[3] in (127, 128)
