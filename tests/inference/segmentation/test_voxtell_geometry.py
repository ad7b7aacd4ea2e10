"""VoxTell's geometry on real data: the adapter's conversion of a BirdView `Volume` is the
array VoxTell's own reader (nnU-Net's `NibabelIOWithReorient`) makes from the study's NIfTI
file, and a mask in VoxTell's space comes back on the same voxels, through VoxTell's own
crop to the non-zero box and back.

The known asymmetric mask is the bundled TotalSegmentator label map's liver (on the patient's
right) on the sample CT. No model runs here (see test_voxtell_worker.py).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("voxtell", reason="the voxtell package is not installed (extra: voxtell)")

from nnunetv2.imageio.nibabel_reader_writer import NibabelIOWithReorient  # noqa: E402
from nnunetv2.preprocessing.cropping.cropping import crop_to_nonzero  # noqa: E402

from birdview.core.geometry import to_canonical  # noqa: E402
from birdview.core.io import load, scan  # noqa: E402
from birdview.core.labels_io import open_labels  # noqa: E402
from birdview.core.resources import sample_ct_dir  # noqa: E402
from birdview.core.volume import Volume  # noqa: E402
from birdview.inference.segmentation.voxtell import (  # noqa: E402
    from_voxtell,
    ras_affine,
    to_voxtell,
)

LIVER = 5  # TotalSegmentator's value in the bundled label map


@pytest.fixture(scope="module")
def ct() -> Volume:
    return to_canonical(load(scan(sample_ct_dir()).entries[0]))


@pytest.fixture(scope="module")
def label_file() -> str:
    return str(sample_ct_dir().parent / "totalseg_ct_labels" / "example_seg_dicom.nii.gz")


@pytest.fixture(scope="module")
def liver(ct, label_file) -> np.ndarray:
    """The liver on BirdView's (k, j, i) grid of the CT, as BirdView places the label map."""
    mask = np.asarray(open_labels(label_file, ct).volume.voxels) == LIVER
    assert mask.sum() > 10_000
    return mask


@pytest.fixture(scope="module")
def voxtell_labels(label_file):
    """The label map as VoxTell's reader gives it: (z, y, x) of the RAS-reoriented file."""
    array, props = NibabelIOWithReorient().read_seg(label_file)
    return array[0], props


def test_the_adapter_gives_voxtell_the_array_its_own_reader_makes(ct, liver, voxtell_labels):
    labels, props = voxtell_labels
    expected = labels == LIVER
    converted = to_voxtell(liver, ras_affine(ct))
    assert converted.shape == expected.shape
    np.testing.assert_array_equal(converted, expected)
    # The two describe one grid: the reoriented affine from BirdView's geometry is the file's.
    from nibabel.orientations import inv_ornt_aff, io_orientation

    affine = ras_affine(ct)
    ijk_shape = ct.shape[::-1]
    reoriented = affine @ inv_ornt_aff(io_orientation(affine), ijk_shape)
    np.testing.assert_allclose(reoriented, props["nibabel_stuff"]["reoriented_affine"], atol=1e-3)


def test_the_liver_is_on_the_patients_right_in_both_spaces(ct, liver):
    body = np.asarray(ct.voxels) > -500
    liver_ijk = np.argwhere(liver).mean(axis=0)[::-1]
    body_ijk = np.argwhere(body).mean(axis=0)[::-1]
    # LPS: x grows to the patient's left, so the liver's x is below the body's.
    assert ct.index_to_lps(liver_ijk)[0] < ct.index_to_lps(body_ijk)[0] - 30
    # VoxTell's array is (z, y, x) of RAS: x (the last axis) grows to the patient's right.
    affine = ras_affine(ct)
    liver_x = np.argwhere(to_voxtell(liver, affine))[:, 2].mean()
    body_x = np.argwhere(to_voxtell(body, affine))[:, 2].mean()
    assert liver_x > body_x + 30


def test_a_mask_in_voxtell_space_lands_back_on_the_same_voxels(ct, liver, voxtell_labels):
    labels, _ = voxtell_labels
    back = from_voxtell(labels == LIVER, ras_affine(ct))
    np.testing.assert_array_equal(back, liver)


def test_voxtells_crop_to_the_body_and_back_keeps_the_liver_in_place(ct, liver):
    """What `VoxTellPredictor.predict_single_image` does around the network: crop the image
    to its non-zero box, predict inside it, put the crop back into a zero array."""
    from acvl_utils.cropping_and_padding.bounding_boxes import insert_crop_into_image

    affine = ras_affine(ct)
    image = to_voxtell(ct.voxels, affine).astype(np.float32)[None]
    image[:, :, :40, :] = 0  # an empty border, so the crop really cuts
    cropped, _, bbox = crop_to_nonzero(image, None)
    assert cropped.shape[2] < image.shape[2]
    liver_vt = to_voxtell(liver, affine)
    inside = liver_vt[tuple(slice(a, b) for a, b in bbox)]
    assert inside.shape == cropped.shape[1:]
    restored = insert_crop_into_image(np.zeros((1, *image.shape[1:]), np.uint8), inside[None], bbox)
    np.testing.assert_array_equal(from_voxtell(restored[0] != 0, affine), liver & _kept(ct))


def _kept(ct: Volume) -> np.ndarray:
    """The voxels of the CT outside the zeroed border (rows 0..39 of VoxTell's y axis)."""
    affine = ras_affine(ct)
    kept = np.ones(to_voxtell(np.zeros(ct.shape, bool), affine).shape, bool)
    kept[:, :40, :] = False
    return from_voxtell(kept, affine)


@pytest.mark.parametrize("how", ["flipped", "transposed"])
def test_a_volume_stored_another_way_gives_voxtell_the_same_array(ct, liver, how):
    stored, mask = _stored(ct, liver, how)
    np.testing.assert_array_equal(
        to_voxtell(stored.voxels, ras_affine(stored)), to_voxtell(ct.voxels, ras_affine(ct))
    )
    np.testing.assert_array_equal(
        from_voxtell(to_voxtell(liver, ras_affine(ct)), ras_affine(stored)), mask
    )


def _stored(ct: Volume, liver: np.ndarray, how: str) -> tuple[Volume, np.ndarray]:
    """The same CT with its voxels flipped along k and i (or with i and j swapped), and a
    direction and origin that keep every voxel at its place in the patient."""
    d = np.asarray(ct.direction)
    if how == "flipped":
        corner = ct.index_to_lps((ct.shape[2] - 1, 0, ct.shape[0] - 1))
        stored = ct.with_changes(
            voxels=np.ascontiguousarray(ct.voxels[::-1, :, ::-1]),
            direction=d * np.array([-1.0, 1.0, -1.0]),
            origin_lps_mm=tuple(corner),
        )
        return stored, liver[::-1, :, ::-1]
    stored = ct.with_changes(
        voxels=np.ascontiguousarray(ct.voxels.transpose(0, 2, 1)),
        direction=d[:, [1, 0, 2]],
        spacing_mm=(ct.spacing_mm[1], ct.spacing_mm[0], ct.spacing_mm[2]),
    )
    return stored, liver.transpose(0, 2, 1)
