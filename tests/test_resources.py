"""What the product ships in resources/samples: only redistributable data (per
../shared/data/README.md: the TotalSegmentator CT and its label map, the dcm4che MR), unmodified,
each folder with its licence and attribution, and every study opens."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from birdview.core.geometry import to_canonical
from birdview.core.io import load, scan
from tests.conftest import REPO, shared

SAMPLES = REPO / "resources" / "samples"
# Shared-data folders whose README row says "Ship? yes".
REDISTRIBUTABLE = ("totalseg/", "dcm4che_mr/")
OURS = {"ATTRIBUTION.md"}


def manifest() -> dict[str, str]:
    """sha256 → path (relative to shared/data) of every shared data file."""
    lines = shared("MANIFEST.sha256").read_text().splitlines()
    return {digest: path.lstrip("*") for digest, path in (line.split(None, 1) for line in lines)}


def sample_files():
    return sorted(p for p in SAMPLES.rglob("*") if p.is_file() and p.name not in OURS)


@pytest.mark.parametrize("path", sample_files(), ids=lambda p: str(p.relative_to(SAMPLES)))
def test_every_shipped_file_is_an_unmodified_redistributable_copy(path):
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    source = manifest().get(digest)
    assert source is not None, f"{path} is not a copy of a shared data file"
    assert source.startswith(REDISTRIBUTABLE), f"{source} may not be shipped"


@pytest.mark.parametrize("folder", sorted(p for p in SAMPLES.iterdir() if p.is_dir()))
def test_every_sample_folder_has_a_licence_and_an_attribution(folder):
    names = {p.name for p in folder.iterdir()}
    assert names & {"LICENSE", "LICENSE.txt"} and "ATTRIBUTION.md" in names


@pytest.mark.parametrize("name", ["totalseg_ct", "dcm4che_mr", "totalseg_ct_labels"])
def test_every_sample_opens_as_one_series(name):
    catalog = scan(SAMPLES / name)
    (entry,) = catalog.entries
    assert not catalog.problems and load(entry).voxels.size > 0


def test_the_label_map_lies_on_the_sample_ct():
    ct = to_canonical(load(scan(SAMPLES / "totalseg_ct").entries[0]))
    labels = to_canonical(load(scan(SAMPLES / "totalseg_ct_labels").entries[0]))
    assert labels.shape == ct.shape
    np.testing.assert_allclose(labels.origin_lps_mm, ct.origin_lps_mm, atol=0.01)
    np.testing.assert_allclose(labels.direction, ct.direction, atol=1e-4)
    # Bone labels (vertebrae T11/T12) sit on bone.
    bone = np.isin(labels.voxels, (32, 33))
    assert np.median(ct.voxels[bone]) > 150


def test_the_demo_model_is_small_and_says_what_it_is():
    demo = REPO / "resources" / "demo_model"
    size_mb = sum(p.stat().st_size for p in demo.iterdir()) / 2**20
    assert size_mb <= 30, f"the demo model is {size_mb:.1f} MB"
    card = (demo / "README.md").read_text(encoding="utf-8")
    assert "not a medical model" in card and "python -m experiments.demo_model" in card
    assert "trained on the data it shows" in card and "| structure | on slices |" in card
    metadata = json.loads((demo / "birdview.json").read_text(encoding="utf-8"))
    assert metadata["family"] == "qwen3_vl" and metadata["recipe"]["name"] == "tiny-cpu"
    assert (demo / "data_card.json").is_file()
