"""`Volume.identity`: which study a conversation and an export belong to, on real files."""

from __future__ import annotations

import gc
import re
import shutil

import numpy as np

from birdview.core.geometry import to_canonical
from birdview.core.io import load, scan
from birdview.core.volume import Volume
from tests.conftest import REPO, shared

SAMPLE_CT = REPO / "resources" / "samples" / "totalseg_ct"


def _open(path):
    (entry, *_) = scan(path).entries
    return to_canonical(load(entry))


def test_a_study_without_uids_is_known_by_its_content_wherever_it_lies(tmp_path):
    ct = _open(SAMPLE_CT)
    assert ct.series_uid == ""  # the sample CT's UIDs are blank: content is all there is
    assert re.fullmatch(r"content-sha256:[0-9a-f]{64}", ct.identity)
    moved = shutil.copytree(SAMPLE_CT, tmp_path / "elsewhere")
    assert _open(moved).identity == ct.identity


def test_one_changed_voxel_or_spacing_is_another_study():
    ct = _open(SAMPLE_CT)
    voxels = np.array(ct.voxels)
    voxels[3, 100, 100] += 1
    assert ct.with_changes(voxels=voxels).identity != ct.identity
    assert ct.with_changes(spacing_mm=(1.0, 1.0, 2.5)).identity != ct.identity


def test_dicom_with_uids_is_known_by_its_series():
    mr = _open(shared("dcm4che_mr"))
    assert mr.series_uid and re.fullmatch(r"series-sha256:[0-9a-f]{64}", mr.identity)
    assert mr.series_uid not in mr.identity  # a hash, not the UID itself
    assert _open(shared("dcm4che_mr")).identity == mr.identity
    assert mr.identity != _open(SAMPLE_CT).identity


def test_nifti_studies_are_told_apart_by_content():
    ct, mr = (
        _open(shared("totalseg", name)) for name in ("example_ct_sm.nii.gz", "example_mr_sm.nii.gz")
    )
    assert ct.identity.startswith("content-sha256:") and ct.identity != mr.identity


def test_token_is_never_reused_after_collection():
    """`Volume.token` keys render caches: unlike ``id()``, it never comes back for a new
    object once the old one is collected."""
    first = Volume(np.zeros((1, 4, 4), np.uint8))
    old_token = first.token
    del first
    gc.collect()
    later = [Volume(np.zeros((1, 4, 4), np.uint8)) for _ in range(50)]
    assert old_token not in {v.token for v in later}
    assert len({v.token for v in later}) == len(later)
    copy = later[0].with_changes(modality="CT")
    assert copy.token != later[0].token  # a copy is another object: its renders differ
