"""Finding studies: folders, zips, DICOMDIR, mixed good and bad files, and the info command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest

from birdview.core.errors import VolumeReadError
from birdview.core.info import describe_path
from birdview.core.io import load, open_path, scan, tag_rows
from tests.conftest import REPO, shared

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def test_whole_shared_data_folder_opens_with_only_documented_problems():
    volumes, problems = open_path(shared())
    # 20-slice CT, 16-slice MR, 11 test objects, 5 NIfTI + 2 BraTS, and the PNGs.
    assert len(volumes) > 140
    assert all(p.message.startswith("Unable to read") for p in problems)
    by_modality = {v.modality for v in volumes}
    assert {"CT", "MR"} <= by_modality


def test_missing_path_is_a_read_error():
    with pytest.raises(VolumeReadError, match="does not exist"):
        scan("/no/such/study")


def test_zip_of_a_series_opens_like_the_folder(tmp_path):
    folder = shared("dcm4che_mr")
    archive = tmp_path / "wrist.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.glob("*.dcm")):
            zf.write(path, f"study/series/{path.name}")
        zf.write(folder / "LICENSE.txt", "LICENSE.txt")
    from_zip = scan(archive)
    from_folder = scan(folder)
    assert [e.n_slices for e in from_zip.entries] == [16]
    assert from_zip.problems == []
    np.testing.assert_array_equal(
        load(from_zip.entries[0]).voxels, load(from_folder.entries[0]).voxels
    )


def test_damaged_zip_names_the_archive(tmp_path):
    archive = tmp_path / "broken.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(shared("dcm4che_mr", "MR01.dcm"), "MR01.dcm")
    archive.write_bytes(archive.read_bytes()[:-30])
    with pytest.raises(VolumeReadError, match="broken.zip"):
        scan(archive)


def test_dicomdir_lists_the_referenced_images():
    catalog = scan(PYDICOM_FILES / "dicomdirtests" / "DICOMDIR")
    assert catalog.entries, catalog.problems
    referenced = {os.path.realpath(p) for e in catalog.entries for p in e.paths}
    assert all(p.startswith(os.path.realpath(PYDICOM_FILES / "dicomdirtests")) for p in referenced)


def test_folder_with_bad_files_opens_the_good_series_and_lists_the_bad(tmp_path):
    for path in shared("dcm4che_mr").glob("MR*.dcm"):
        shutil.copy(path, tmp_path / path.name)
    good = (tmp_path / "MR05.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(good[: len(good) // 3])
    (tmp_path / "notes.dcm").write_text("not an image")
    volumes, problems = open_path(tmp_path)
    assert [v.shape[0] for v in volumes] == [16]
    bad = sorted(Path(p.path).name for p in problems)
    assert bad == ["cut.dcm", "notes.dcm"]
    assert all(Path(p.path).name in p.message for p in problems)


def test_tag_rows_follow_the_slice_source():
    volume = load(scan(shared("dcm4che_mr")).entries[0])
    rows_first = tag_rows(volume.sources[0])
    rows_last = tag_rows(volume.sources[-1])
    position = "(0020,0032)"
    first = next(r.value for r in rows_first if r.tag == position)
    last = next(r.value for r in rows_last if r.tag == position)
    assert first != last
    assert (
        tag_rows(load(scan(shared("totalseg", "example_ct_sm.nii.gz")).entries[0]).sources[0]) == []
    )


def test_info_report_of_the_ct_series():
    report = describe_path(shared("totalseg", "example_ct_dicom"))
    assert report["errors"] == []
    (series,) = report["series"]
    assert series["modality"] == "CT"
    assert series["shape"] == [20, 512, 512]
    assert series["spacing"] == pytest.approx([0.977, 0.977, 2.0], abs=1e-3)
    assert series["plane"] == "axial"
    assert json.loads(json.dumps(report)) == report


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "birdview", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_info_cli_json_exit_codes(tmp_path):
    done = _cli("info", str(shared("dcm4che_mr")), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["series"][0]["shape"] == [16, 256, 256]
    assert set(report["series"][0]) >= {"description", "modality", "shape", "spacing", "warnings"}
    assert "DOE" not in done.stdout  # no patient identity in the scriptable report

    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"\x00" * 50)
    failed = _cli("info", str(junk), "--json")
    assert failed.returncode == 2
    errors = json.loads(failed.stdout)["errors"]
    assert errors[0]["path"].endswith("junk.dcm") and "junk.dcm" in errors[0]["message"]
    assert "Traceback" not in failed.stderr


def test_info_cli_text_lists_series_and_problems(tmp_path):
    shutil.copytree(shared("dcm4che_mr"), tmp_path / "mr")
    (tmp_path / "mr" / "MR09.dcm").write_bytes((tmp_path / "mr" / "MR09.dcm").read_bytes()[:4000])
    done = _cli("info", str(tmp_path / "mr"))
    assert done.returncode == 0, done.stderr
    assert "1 series" in done.stdout and "15×256×256" in done.stdout
    assert "MR09.dcm" in done.stdout


def test_zip_members_cannot_leave_the_extraction_folder(tmp_path):
    mr01 = shared("dcm4che_mr", "MR01.dcm").read_bytes()
    archive = tmp_path / "crafted.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escaped.dcm", mr01)
        zf.writestr("C:/Windows/escaped2.dcm", mr01)
        zf.writestr("//server/share/escaped3.dcm", mr01)
        zf.writestr("a/..\\..\\escaped4.dcm", mr01)
    catalog = scan(archive)
    (folder,) = [holder.name for holder in catalog.keep_alive]
    written = sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())
    assert written == [
        "Windows/escaped2.dcm",
        "a/escaped4.dcm",
        "escaped.dcm",
        "server/share/escaped3.dcm",
    ]
    assert not list(tmp_path.glob("escaped*"))
    assert [e.n_slices for e in catalog.entries] == [1] and not catalog.problems
