"""Send to PACS sends the current results, not only the SR: the SR, key images (a Key Object
Selection and their annotated pictures as Secondary Captures) and the label overlay as a SEG,
all in the open study, checked by reading them back from the real Orthanc."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from PIL import Image

from birdview.core import geometry
from birdview.core.box import Box
from birdview.core.display import Window
from birdview.core.exports import export_png
from birdview.core.exports_dicom import results_for_pacs
from birdview.core.key_images import KeyImage
from birdview.core.labels import label_map_from_array
from birdview.core.labels_dicom import read_seg
from birdview.core.session_store import SessionRecord
from tests.pacs.conftest import SAMPLE_MR
from tests.pacs.helpers import PROTOCOLS, client_for, open_study

WINDOW = Window(400.0, 800.0)


@pytest.fixture(scope="module")
def study():
    return open_study(SAMPLE_MR)[1]


def _labels(volume):
    """Two structures on the sample MR's grid: blocks on a few slices each."""
    labels = np.zeros(volume.shape, dtype=np.uint8)
    labels[100:140, 5:9, 60:100] = 3
    labels[20:30, 2:4, 10:20] = 7
    return label_map_from_array(labels, volume, {3: "lesion", 7: "cyst"}, source="test labels")


def _results(volume, keys, label_map=None):
    plane = geometry.acquisition_plane(volume)
    middle = geometry.slice_count(volume, plane) // 2
    drawn = Box(plane, middle, 40, 40, 120, 110, label="drawn")
    record = SessionRecord(volume.identity, (str(SAMPLE_MR),), user_boxes=(drawn,))
    return record, results_for_pacs(
        record, volume, window=WINDOW, current=(plane, middle), key_images=keys,
        label_map=label_map, boxes_on=lambda p, i: ((drawn,), (0,)) if (p, i) == (plane, middle)
        else ((), ()),
    )  # fmt: skip


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_sent_results_land_in_the_study(study, orthanc, sample_study, tmp_path, protocol):
    plane = geometry.acquisition_plane(study)
    middle = geometry.slice_count(study, plane) // 2
    keys = (KeyImage(plane, 3), KeyImage(plane, middle))
    label_map = _labels(study)
    record, results = _results(study, keys, label_map)
    assert results.summary == (
        "SR + key image selection (2) + 2 secondary captures + SEG (2 segments)"
    )
    paths = results.write(tmp_path / "out")
    before = orthanc.instance_uids()
    sent = client_for(orthanc, protocol).store(paths)
    new = orthanc.instance_uids() - before
    try:
        assert new == set(sent) and len(new) == 5
        back = {uid: pydicom.dcmread(io.BytesIO(orthanc.instance_file(uid))) for uid in new}
        by_kind: dict[str, list] = {}
        for ds in back.values():
            by_kind.setdefault(ds.Modality, []).append(ds)
        assert sorted(by_kind) == ["KO", "OT", "SEG", "SR"]
        for ds in back.values():  # the same study and patient, each kind in a new series
            assert ds.StudyInstanceUID == sample_study["study_uid"]
            assert ds.PatientID == sample_study["patient_id"]
            assert str(ds.PatientName) == sample_study["patient_name"]
        series = {ds.SeriesInstanceUID for ds in back.values()}
        assert len(series) == 4 and not series & {str(study.series_uid)}

        # The SEG read back from Orthanc lands on the same voxels as the label map.
        seg_file = tmp_path / "seg-back.dcm"
        seg_file.write_bytes(orthanc.instance_file(by_kind["SEG"][0].SOPInstanceUID))
        seg = read_seg(str(seg_file), study)
        assert [c.name for c in seg.classes] == ["lesion", "cyst"]
        want = np.asarray(label_map.volume.voxels)
        got = np.asarray(seg.volume.voxels)
        assert np.array_equal(got == 1, want == 3) and np.array_equal(got == 2, want == 7)

        # Each secondary capture's pixels are the annotated PNG export of its key image.
        captures = sorted(by_kind["OT"], key=lambda ds: int(ds.InstanceNumber))
        for key, capture in zip(keys, captures, strict=True):
            png = tmp_path / f"{key.slice_index}.png"
            boxes = record.user_boxes if key.slice_index == middle else ()
            export_png(
                record, study, png, plane=key.plane, slice_index=key.slice_index,
                window=WINDOW, boxes=boxes, colours=[0] * len(boxes), zoom=2.0,
            )  # fmt: skip
            expected = np.asarray(Image.open(png).convert("RGB"))
            assert np.array_equal(capture.pixel_array, expected)
            assert capture.BurnedInAnnotation == "YES"
        assert not np.array_equal(captures[0].pixel_array, captures[1].pixel_array)

        # The KOS points at the key images' source instances of the study.
        kos = by_kind["KO"][0]
        listed = {
            item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
            for item in kos.ContentSequence
            if "ReferencedSOPSequence" in item
        }
        assert len(listed) == 2 and listed <= sample_study["sop_uids"]
    finally:
        for uid in new:
            orthanc.forget(uid)


def test_without_key_images_the_view_is_captured(study):
    _, results = _results(study, ())
    assert results.summary == "SR + 1 secondary capture"
    assert any("slice on screen" in note for note in results.notes)


def test_labels_of_another_study_are_refused(study):
    other = study.with_changes(series_uid=pydicom.uid.generate_uid())  # another series
    foreign = label_map_from_array(np.asarray(_labels(study).volume.voxels), other, {3: "x"})
    assert foreign.study_identity != study.identity
    with pytest.raises(ValueError, match="another study"):
        _results(study, (), foreign)


def test_an_instance_of_another_study_is_refused(study, monkeypatch):
    """Study isolation at the last step: an instance whose Study Instance UID is not the open
    study's is refused, and nothing is returned to send."""
    import birdview.core.exports_dicom as exports_dicom

    real = exports_dicom.segmentation

    def elsewhere(*args):
        seg = real(*args)
        seg.StudyInstanceUID = pydicom.uid.generate_uid()
        return seg

    monkeypatch.setattr(exports_dicom, "segmentation", elsewhere)
    with pytest.raises(ValueError, match="SEG instance as its study .* is not the open study"):
        _results(study, (), _labels(study))


def test_a_study_that_is_not_dicom_is_refused(tmp_path):
    from birdview.core.io import load, scan
    from tests.conftest import REPO

    nifti = REPO / "resources" / "samples" / "totalseg_ct_labels" / "example_seg_dicom.nii.gz"
    volume = geometry.to_canonical(load(scan(str(nifti)).entries[0]))
    record = SessionRecord(volume.identity, (str(nifti),))
    with pytest.raises(ValueError, match="not DICOM"):
        results_for_pacs(record, volume, window=WINDOW, current=(geometry.Plane.AXIAL, 0))


def test_a_seg_of_one_structure_reads_back(study, tmp_path):
    """highdicom files a one-segment SEG's segment number in the shared functional groups;
    reading it back must look there too."""
    labels = np.zeros(study.shape, dtype=np.uint8)
    labels[50:60, 6:8, 30:40] = 5
    label_map = label_map_from_array(labels, study, {5: "nodule"})
    _, results = _results(study, (), label_map)
    assert results.summary.endswith("SEG (1 segment)")
    seg_path = next(p for p in results.write(tmp_path) if p.endswith("-seg.dcm"))
    back = read_seg(seg_path, study)
    assert [c.name for c in back.classes] == ["nodule"]
    assert np.array_equal(np.asarray(back.volume.voxels) == 1, labels == 5)


def test_the_masks_panel_masks_go_as_a_seg_of_their_own(study, orthanc, sample_study, tmp_path):
    """Engine masks (one edited by the user) next to a label overlay: two SEGs, each read back
    from Orthanc on the same voxels; a mask of another study is refused."""
    from birdview.core.mask_exports import NamedMask

    first = np.zeros(study.shape, dtype=bool)
    first[60:90, 6:10, 100:140] = True
    second = np.zeros(study.shape, dtype=bool)
    second[150:170, 3:5, 20:50] = True
    masks = (
        NamedMask("tumour", first, study.identity, engine="SAM box"),
        NamedMask("node", second, study.identity, engine="SAM box", edited=True),
    )
    plane = geometry.acquisition_plane(study)
    record = SessionRecord(study.identity, (str(SAMPLE_MR),))
    results = results_for_pacs(
        record, study, window=WINDOW, current=(plane, 5), label_map=_labels(study), masks=masks
    )
    assert results.summary == "1 secondary capture + SEG (2 segments) + SEG of masks (2 masks)"
    before = orthanc.instance_uids()
    client_for(orthanc, "dimse").store(results.write(tmp_path / "out"))
    new = orthanc.instance_uids() - before
    try:
        segs = []
        for uid in new:
            data = orthanc.instance_file(uid)
            if pydicom.dcmread(io.BytesIO(data)).Modality == "SEG":
                path = tmp_path / f"{uid}.dcm"
                path.write_bytes(data)
                segs.append(read_seg(str(path), study))
        by_names = {tuple(c.name for c in seg.classes): seg for seg in segs}
        assert set(by_names) == {("lesion", "cyst"), ("tumour", "node")}
        back = np.asarray(by_names[("tumour", "node")].volume.voxels)
        assert np.array_equal(back == 1, first) and np.array_equal(back == 2, second)
    finally:
        for uid in new:
            orthanc.forget(uid)

    foreign = NamedMask("tumour", first, "series-sha256:" + "0" * 64)
    with pytest.raises(ValueError, match="belongs to another study"):
        results_for_pacs(record, study, window=WINDOW, current=(plane, 5), masks=(foreign,))
