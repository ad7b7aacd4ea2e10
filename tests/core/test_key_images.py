"""Key images of the sample CT: marked and unmarked, kept in the study's own file (refused for
another study, a damaged file named), and exported as one PNG each plus a Key Object Selection
document that dcmtk's dsrdump accepts and that points at the DICOM file each key slice was
read from."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from PIL import Image

from birdview.core import geometry
from birdview.core._sr_sources import SourceImages
from birdview.core.display import Window
from birdview.core.key_images import (
    KeyImage,
    KeyImages,
    key_images_path,
    load_key_images,
    save_key_images,
)
from birdview.core.key_images_export import export_key_images
from birdview.core.session_store import SessionRecord, session_path
from tests.core.test_measure import ct, ct_truth

OTHER = "content-sha256:" + "cd" * 32


def test_marking_twice_unmarks():
    keys = KeyImages()
    with pytest.raises(ValueError, match="no study is open"):
        keys.toggle("axial", 1)
    keys.reset(ct().identity)
    assert keys.toggle("axial", 7) and keys.toggle("coronal", 3)
    assert KeyImage("axial", 7) in keys and len(keys) == 2
    assert not keys.toggle("axial", 7)
    assert keys.items == (KeyImage("coronal", 3),)


def test_the_studys_own_file(tmp_path):
    identity = ct().identity
    items = [KeyImage("axial", 7), KeyImage("sagittal", 250)]
    path = save_key_images(identity, items, tmp_path)
    assert path == key_images_path(identity, tmp_path)
    assert path.name.endswith(session_path(identity, tmp_path).name[len("session") :])
    assert json.loads(path.read_text())["study_identity"] == identity
    assert load_key_images(identity, tmp_path) == items
    assert load_key_images(OTHER, tmp_path) == []
    # Another study's file under this name is refused, and never overwritten.
    other = key_images_path(OTHER, tmp_path)
    other.write_text(path.read_text())
    with pytest.raises(ValueError, match="belong to another study"):
        load_key_images(OTHER, tmp_path)
    with pytest.raises(ValueError, match="belongs to another study"):
        save_key_images(OTHER, items, tmp_path)
    other.write_text('{"format": "birdview-key-images", "schema_version": 1, "study_id')
    with pytest.raises(ValueError, match=rf"{other.name}.*not JSON"):
        load_key_images(OTHER, tmp_path)
    save_key_images(identity, [], tmp_path)
    assert not path.exists()


def _dsrdump(path) -> str:
    if shutil.which("dsrdump") is None:
        pytest.skip("dcmtk's dsrdump is not installed (Debian package dcmtk; CI installs it)")
    done = subprocess.run(["dsrdump", "+U8", str(path)], capture_output=True, text=True)
    # dcmtk says it cannot check templates nor UTF-8 values; anything else is a fault.
    known = ("template constraints not yet supported", "Specific Character Set: ISO_IR 192")
    problems = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if line[:2] in ("W:", "E:", "F:") and not any(note in line for note in known)
    ]
    assert done.returncode == 0 and not problems, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("anonymise", [False, True])
def test_export_pngs_and_key_object_selection(tmp_path, anonymise):
    volume, truth = ct(), ct_truth()
    keys = [KeyImage("axial", 7), KeyImage("axial", 11), KeyImage("coronal", 200)]
    result = export_key_images(
        SessionRecord(volume.identity), volume, tmp_path, keys, window=Window(400, 40),
        stem="study", anonymise=anonymise,
    )  # fmt: skip
    # Named by the slice numbers the views show (reading order: the head first).
    numbers = [geometry.reading_position(volume, k.plane, k.slice_index) + 1 for k in keys]
    assert numbers[0] != 8 or numbers[1] != 12 or volume.shape[0] == 1  # not the raw indices
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        [f"study-key-axial-{numbers[0]}.png", f"study-key-axial-{numbers[1]}.png",
         f"study-key-coronal-{numbers[2]}.png", "study-key-images.dcm"]
    )  # fmt: skip
    reason = f"key image coronal {numbers[2]}: a reformatted slice has no source image"
    assert result.skipped == (reason,)
    for png in result.pngs:
        pixels = np.asarray(Image.open(png).convert("L"))
        assert pixels.std() > 10  # a real slice, not a blank
    dump = _dsrdump(result.kos)
    assert "Key Object Selection Document" in dump and '"Of Interest"' in dump
    kos = pydicom.dcmread(result.kos)
    referenced = {
        item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
        for item in kos.ContentSequence
        if item.ValueType == "IMAGE"
    }
    sources = {truth.headers[k].file_meta.MediaStorageSOPInstanceUID for k in (7, 11)}
    assert referenced == sources
    # The sample's UIDs are blank; the KOS is filed in the study the SR export files in.
    study_uid = SourceImages(volume, anonymise).first().StudyInstanceUID
    assert kos.StudyInstanceUID == study_uid and study_uid
    description = [i.TextValue for i in kos.ContentSequence if i.ValueType == "TEXT"]
    assert volume.identity in description[0]
    name = str(truth.headers[0].get("PatientName", ""))
    if anonymise:
        assert str(kos.PatientName) != name or not name
    else:
        assert str(kos.PatientName) == name


def test_nothing_marked_is_refused(tmp_path):
    volume = ct()
    with pytest.raises(ValueError, match="no slice is marked"):
        export_key_images(
            SessionRecord(volume.identity), volume, tmp_path, [], window=Window(400, 40), stem="s"
        )
    with pytest.raises(ValueError):
        export_key_images(
            SessionRecord(OTHER), volume, tmp_path, [KeyImage("axial", 1)],
            window=Window(400, 40), stem="s",
        )  # fmt: skip
