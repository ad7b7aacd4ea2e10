"""The model's view of a slice: SA-Med2D percentile normalisation, independent of the display
window, on the real TotalSegmentator CT and a real fundus photograph."""

from __future__ import annotations

import numpy as np
import pytest

from birdview.core import display
from birdview.core.geometry import Plane, extract_slice, slice_count, to_canonical
from birdview.core.io import load, scan
from birdview.core.model_input import render_for_model, volume_intensity_range
from birdview.core.volume import Volume
from tests.conftest import shared


def _canonical(*parts: str) -> Volume:
    catalog = scan(shared(*parts))
    assert len(catalog.entries) == 1
    return to_canonical(load(catalog.entries[0]))


@pytest.fixture(scope="module")
def ct() -> Volume:
    return _canonical("totalseg", "example_ct_dicom")


@pytest.fixture(scope="module")
def ct_range(ct) -> tuple[float, float]:
    return volume_intensity_range(ct)


def test_range_is_the_volumes_percentiles(ct, ct_range):
    """Sampled (the CT has 5.2 M voxels), yet within a few HU of the exact percentiles."""
    exact_low, exact_high = np.percentile(ct.voxels, [0.5, 99.5])
    assert ct_range[0] == pytest.approx(exact_low, abs=5)
    assert ct_range[1] == pytest.approx(exact_high, abs=5)
    assert volume_intensity_range(ct) == ct_range  # deterministic


@pytest.mark.parametrize("plane", list(Plane))
def test_ct_renders_grey_rgb_scaled_to_the_range(ct, ct_range, plane):
    index = slice_count(ct, plane) // 2
    rgb = render_for_model(ct, plane, index, intensity_range=ct_range)
    values = extract_slice(ct, plane, index)
    assert rgb.dtype == np.uint8 and rgb.shape == (*values.shape, 3)
    assert rgb.flags.c_contiguous and rgb.flags.writeable
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    low, high = ct_range
    grey = rgb[..., 0]
    assert (grey[values <= low] == 0).all()
    assert (grey[values >= high] == 255).all()
    inside = (values > low) & (values < high)
    expected = (values[inside] - low) / (high - low) * 255
    assert np.abs(grey[inside] - expected).max() <= 0.5 + 1e-9


def test_exact_percentiles_map_to_the_ends(ct):
    exact = tuple(np.percentile(ct.voxels, [0.5, 99.5]))
    assert volume_intensity_range(ct) == pytest.approx(exact, abs=15)
    probe = Volume(np.array([[[exact[0], exact[1]]]]))
    rgb = render_for_model(probe, Plane.AXIAL, 0, intensity_range=volume_intensity_range(ct))
    assert rgb[0, 0, 0] <= 2 and rgb[0, 1, 0] >= 253


def test_the_display_window_never_reaches_the_model(ct, ct_range):
    """The model input does not take a window; windowing the display leaves it as it was."""
    before = render_for_model(ct, Plane.AXIAL, 10, intensity_range=ct_range)
    for window in display.PRESETS.values():
        shown = display.apply_window(extract_slice(ct, Plane.AXIAL, 10), window)
        assert shown.dtype == np.uint8
        np.testing.assert_array_equal(
            render_for_model(ct, Plane.AXIAL, 10, intensity_range=ct_range), before
        )
    np.testing.assert_array_equal(render_for_model(ct, Plane.AXIAL, 10), before)


def test_rgb_photograph_passes_through():
    fundus = _canonical("biomedparse_demo", "demo", "23_fundus_retinal.png")
    assert fundus.is_rgb and fundus.voxels.dtype == np.uint8
    rgb = render_for_model(fundus, Plane.AXIAL, 0, intensity_range=(100.0, 110.0))
    np.testing.assert_array_equal(rgb, fundus.voxels[0])
    assert rgb.shape == (1024, 1024, 3) and rgb.dtype == np.uint8


def test_degenerate_volumes():
    flat = Volume(np.full((2, 3, 4), 7, dtype=np.int16))
    assert volume_intensity_range(flat) == (7.0, 8.0)
    assert (render_for_model(flat, Plane.AXIAL, 0) == 0).all()
    spike = np.zeros((1, 100, 100), dtype=np.float32)
    spike[0, 0, 0] = 1000
    spike[0, 0, 1] = np.nan
    assert volume_intensity_range(Volume(spike)) == (0.0, 1000.0)
    rgb = render_for_model(Volume(spike), Plane.AXIAL, 0)
    assert rgb[0, 0, 0] == 255 and rgb[0, 1, 0] == 0 and rgb[5, 5, 0] == 0
    all_nan = Volume(np.full((1, 2, 2), np.nan, dtype=np.float32))
    assert volume_intensity_range(all_nan) == (0.0, 1.0)


@pytest.mark.parametrize("bad", [(5, 5), (6, 5), (0, float("inf")), (1,), "ab"])
def test_bad_ranges_raise(bad):
    volume = Volume(np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="Unable to render for the model as intensity_range"):
        render_for_model(volume, Plane.AXIAL, 0, intensity_range=bad)


def test_out_of_range_slice_raises(ct, ct_range):
    with pytest.raises(IndexError, match="Unable to show axial slice 20"):
        render_for_model(ct, Plane.AXIAL, 20, intensity_range=ct_range)
