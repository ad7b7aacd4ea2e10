"""MaskSet: masks on the study grid, edits as patches, undo/redo, batches, change events."""

from __future__ import annotations

import numpy as np
import pytest

from birdview.core import geometry
from birdview.core.geometry import Plane
from birdview.core.mask_set import MaskSet
from birdview.core.volume import Volume

SHAPE = (6, 20, 30)


def _set() -> MaskSet:
    masks = MaskSet()
    masks.reset("study-a", SHAPE)
    return masks


def _disk(shape: tuple[int, int], cy: int, cx: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_add_put_slice_and_events() -> None:
    masks = _set()
    seen: list = []
    masks.data_changed.connect(seen.append)
    mask_id = masks.add("liver", "SAM box")
    assert masks.selected == mask_id and masks.get(mask_id).voxels == 0
    disk = _disk(SHAPE[1:], 10, 15, 4)
    masks.put_slice(mask_id, Plane.AXIAL, 2, disk)
    assert seen == [mask_id]
    expected = np.zeros(SHAPE, bool)
    expected[2] = disk
    assert np.array_equal(masks.get(mask_id).data != 0, expected)


def test_put_slice_in_other_planes_matches_extract_slice() -> None:
    masks = _set()
    mask_id = masks.add("m", "SAM box")
    rng = np.random.default_rng(0)
    coronal = rng.random((SHAPE[0], SHAPE[2])) > 0.5
    masks.put_slice(mask_id, Plane.CORONAL, 7, coronal)
    labels = Volume(masks.label_volume())
    assert np.array_equal(geometry.extract_slice(labels, Plane.CORONAL, 7) != 0, coronal)
    assert np.array_equal(masks.label_slice(Plane.CORONAL, 7) != 0, coronal)


def test_paint_changes_exactly_the_painted_pixels_and_undo_restores() -> None:
    masks = _set()
    mask_id = masks.add("m", "brush")
    first = _disk(SHAPE[1:], 10, 10, 5)
    masks.put_slice(mask_id, Plane.AXIAL, 3, first)
    before = masks.get(mask_id).data.copy()
    stroke = _disk(SHAPE[1:], 10, 16, 4)
    changed = masks.paint(mask_id, Plane.AXIAL, 3, stroke, True)
    assert changed == int(np.count_nonzero(stroke & ~first))
    assert np.array_equal(masks.get(mask_id).data[3] != 0, first | stroke)
    erased = masks.paint(mask_id, Plane.AXIAL, 3, first, False)
    assert erased == int(np.count_nonzero(first | stroke)) - int(np.count_nonzero(stroke & ~first))
    assert np.array_equal(masks.get(mask_id).data[3] != 0, stroke & ~first)
    assert masks.undo() and masks.undo()
    assert np.array_equal(masks.get(mask_id).data, before)
    assert masks.redo()
    assert np.array_equal(masks.get(mask_id).data[3] != 0, first | stroke)
    assert masks.paint(mask_id, Plane.AXIAL, 3, first, True) == 0  # nothing new: no step


def test_batch_is_one_undo_step() -> None:
    masks = _set()
    mask_id = masks.add("m", "propagated")
    with masks.batch():
        for k in range(SHAPE[0]):
            masks.put_slice(mask_id, Plane.AXIAL, k, _disk(SHAPE[1:], 10, 15, k + 1))
    assert masks.get(mask_id).voxels > 0
    assert masks.undo()
    assert masks.get(mask_id).voxels == 0
    assert masks.undo()  # the add
    assert len(masks) == 0 and masks.selected is None
    assert masks.redo() and masks.redo()
    assert masks.get(mask_id).voxels == sum(
        int(np.count_nonzero(_disk(SHAPE[1:], 10, 15, k + 1))) for k in range(SHAPE[0])
    )


def test_remove_rename_and_undo() -> None:
    masks = _set()
    a = masks.add("a", "SAM box", np.ones(SHAPE))
    b = masks.add("b", "SAM box")
    masks.rename(a, "liver")
    masks.remove(a)
    assert [e.id for e in masks] == [b]
    masks.undo()
    assert [e.name for e in masks] == ["liver", "b"] and masks.get(a).voxels == np.prod(SHAPE)
    masks.undo()
    assert masks.get(a).name == "a"


def test_label_slice_draws_later_masks_over_earlier_and_skips_hidden() -> None:
    masks = _set()
    a = masks.add("a", "SAM box", np.ones(SHAPE))
    b = masks.add("b", "SAM box")
    masks.put_slice(b, Plane.AXIAL, 0, _disk(SHAPE[1:], 5, 5, 2))
    labels = masks.label_slice(Plane.AXIAL, 0)
    assert set(np.unique(labels)) == {1, 2}
    masks.set_visible(a, False)
    assert set(np.unique(masks.label_slice(Plane.AXIAL, 0))) == {0, 2}


def test_refusals() -> None:
    masks = MaskSet()
    with pytest.raises(ValueError, match="no study"):
        masks.add("m", "SAM box")
    masks.reset("s", SHAPE)
    with pytest.raises(ValueError, match="shape"):
        masks.add("m", "SAM box", np.ones((2, 2, 2)))
    mask_id = masks.add("m", "SAM box")
    with pytest.raises(IndexError):
        masks.put_slice(mask_id, Plane.AXIAL, SHAPE[0], np.ones(SHAPE[1:]))
    with pytest.raises(KeyError):
        masks.get(999)


def test_store_round_trip_and_refusals(tmp_path) -> None:
    from birdview.core.mask_store import load_masks, masks_path, save_masks

    identity = "content-sha256:" + "ab" * 32
    masks = MaskSet()
    masks.reset(identity, SHAPE)
    a = masks.add("liver", "SAM box")
    masks.put_slice(a, Plane.AXIAL, 1, _disk(SHAPE[1:], 8, 9, 5))
    b = masks.add("lesion", "propagated", colour=(1, 2, 3))
    masks.put_slice(b, Plane.SAGITTAL, 4, _disk((SHAPE[0], SHAPE[1]), 3, 10, 2))
    masks.set_visible(b, False)
    path = save_masks(masks, tmp_path)
    back = MaskSet()
    back.reset(identity, SHAPE)
    assert load_masks(identity, tmp_path, back)
    assert [(e.id, e.name, e.colour, e.source, e.visible) for e in back] == [
        (e.id, e.name, e.colour, e.source, e.visible) for e in masks
    ]
    for old, new in zip(masks, back, strict=True):
        assert np.array_equal(old.data, new.data)
    assert back.add("next", "brush") > b  # ids are not reused
    other = "content-sha256:" + "cd" * 32
    path.rename(masks_path(other, tmp_path))
    with pytest.raises(ValueError, match="another study"):
        load_masks(other, tmp_path, back)
    masks_path(identity, tmp_path).write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="Unable to read 'masks-"):
        load_masks(identity, tmp_path, back)


def test_axial_axes_match_a_brute_force_count_on_random_masks() -> None:
    """The long axis is the greatest distance between two pixel corners of the mask on one
    slice: counted here over every pair of corners (the measured code uses a hull of each
    row's end pixels)."""
    from birdview.core.masks import axial_diameters_mm

    rng = np.random.default_rng(3)
    for _ in range(15):
        mask = rng.random((1, 14, 17)) > rng.uniform(0.4, 0.97)
        if not mask.any():
            continue
        spacing = (float(rng.uniform(0.5, 2)), float(rng.uniform(0.5, 2)), 3.0)
        rows, cols = np.nonzero(mask[0])
        corners = np.array(
            [
                ((c + dx) * spacing[0], (r + dy) * spacing[1])
                for r, c in zip(rows, cols, strict=True)
                for dx in (0, 1)
                for dy in (0, 1)
            ]
        )
        gaps = corners[:, None, :] - corners[None, :, :]
        expected = float(np.hypot(gaps[..., 0], gaps[..., 1]).max())
        found = axial_diameters_mm(mask, Volume(mask.astype(np.uint8), spacing_mm=spacing))
        assert found is not None and found.long_mm == pytest.approx(expected)
        assert 0 < found.short_mm <= found.long_mm + 2 * max(spacing[:2])
