"""Masks of the sample CT written as DICOM SEG, NIfTI and SR, and read back by highdicom,
nibabel and dcmtk's dsrdump: the SEG's frames land on the CT's slices by their positions, the
NIfTI lies on the bundled label map's voxels with its affine, the SR holds the numbers with
UCUM units; masks of another study are refused with nothing written."""

from __future__ import annotations

import json

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from birdview.core._sr_sources import SourceImages
from birdview.core.geometry import to_canonical
from birdview.core.io import load, scan
from birdview.core.labels_io import bundled_labels_path, open_labels
from birdview.core.mask_exports import NamedMask, export_masks, export_nifti, export_seg
from birdview.core.masks import axial_diameters_mm, mask_volume_ml
from birdview.core.resources import sample_ct_dir
from birdview.core.session_store import ModelInfo, SessionRecord
from tests.core.test_exports import read_sr

LIVER, SPLEEN = 5, 1  # the bundled classes.json's values
OTHER_STUDY = "content-sha256:" + "1" * 64


@pytest.fixture(scope="module")
def study():
    ct = to_canonical(load(scan(sample_ct_dir()).entries[0]))
    return ct, open_labels(bundled_labels_path(ct), ct)


def _masks(ct, labels) -> list[NamedMask]:
    voxels = np.asarray(labels.volume.voxels)
    return [
        NamedMask("liver", voxels == LIVER, ct.identity, (220, 90, 60), engine="tiny-sam"),
        NamedMask("spleen", voxels == SPLEEN, ct.identity, engine="tiny-sam", edited=True),
        NamedMask("drawn", voxels == 6, ct.identity),  # stomach, "drawn by hand"
    ]


@pytest.fixture(scope="module")
def exported(study, tmp_path_factory):
    ct, labels = study
    record = SessionRecord(ct.identity, model=ModelInfo("bird", "qwen2_5_vl", "bf16", ""))
    folder = tmp_path_factory.mktemp("masks")
    return export_masks(record, ct, folder / "report.dcm", _masks(ct, labels))


def test_the_seg_frames_land_on_the_ct_slices_with_the_masks_voxels(study, exported):
    ct, labels = study
    seg = hd.seg.segread(exported.seg)
    names = [s.SegmentLabel for s in seg.SegmentSequence]
    assert names == ["liver", "spleen", "drawn"]
    kinds = [s.SegmentAlgorithmType for s in seg.SegmentSequence]
    assert kinds == ["AUTOMATIC", "SEMIAUTOMATIC", "MANUAL"]
    assert seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0].AlgorithmName == (
        "tiny-sam"
    )
    # The sample's Study Instance UID is blank; BirdView fills in the same one everywhere.
    assert seg.StudyInstanceUID == SourceImages(ct, anonymise=False).first().StudyInstanceUID
    assert seg.StudyInstanceUID == pydicom.dcmread(exported.sr).StudyInstanceUID
    # Slice k of the study is the CT file whose Image Position (Patient) the frame has.
    positions = [
        tuple(round(float(v), 3) for v in pydicom.dcmread(s.path).ImagePositionPatient)
        for s in ct.sources
    ]
    pixels = seg.pixel_array
    truth = {1: LIVER, 2: SPLEEN, 3: 6}
    seen = set()
    for f, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        where = tuple(
            round(float(v), 3) for v in item.PlanePositionSequence[0].ImagePositionPatient
        )
        segment = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        k = positions.index(where)
        expected = np.asarray(labels.volume.voxels)[k] == truth[segment]
        np.testing.assert_array_equal(pixels[f].astype(bool), expected)
        seen.add((segment, k))
    voxels = np.asarray(labels.volume.voxels)
    for segment, value in truth.items():  # every slice that holds the mask has its frame
        held = {int(k) for k in np.flatnonzero((voxels == value).any(axis=(1, 2)))}
        assert held == {k for s, k in seen if s == segment}


def test_a_one_segment_seg_reads_back(study, tmp_path):
    ct, labels = study
    mask = _masks(ct, labels)[0]
    export_seg([mask], ct, tmp_path / "one.dcm")
    seg = hd.seg.segread(tmp_path / "one.dcm")
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["liver"]
    total = int(seg.pixel_array.astype(bool).sum())
    assert total == int(mask.voxels.sum())


def test_the_nifti_has_the_bundled_label_maps_affine_and_voxels(study, exported):
    ct, labels = study
    bundled = nib.load(bundled_labels_path(ct))
    written = nib.load(exported.nifti)
    np.testing.assert_allclose(written.affine, bundled.affine, atol=1e-4)
    data, reference = np.asarray(written.dataobj), np.asarray(bundled.dataobj)
    assert data.shape == reference.shape
    np.testing.assert_array_equal(data == 1, reference == LIVER)
    np.testing.assert_array_equal(data == 2, reference == SPLEEN)
    names = json.loads(open(exported.classes, encoding="utf-8").read())
    section = next(v for v in names.values() if isinstance(v, dict))
    assert section["labels"] == {"1": "liver", "2": "spleen", "3": "drawn"}
    assert section["study_identity"] == ct.identity
    reopened = open_labels(exported.nifti, ct)  # BirdView finds the names beside it
    assert [c.name for c in reopened.classes] == ["liver", "spleen", "drawn"]


def test_the_sr_passes_dsrdump_and_holds_the_numbers_with_units(study, exported):
    ct, labels = study
    dump, sr = read_sr(exported.sr)
    assert "Volume" in dump and "(mL,UCUM" in dump and "Long axis" in dump
    groups = sr.content.get_volumetric_roi_measurement_groups()
    assert [g.tracking_identifier for g in groups] == [
        "Mask 1: liver", "Mask 2: spleen", "Mask 3: drawn",
    ]  # fmt: skip
    seg = pydicom.dcmread(exported.seg)
    liver = np.asarray(labels.volume.voxels) == LIVER
    group = groups[0]
    for n, item in enumerate(groups, start=1):  # segment n of the SEG written beside it
        reference = item.referenced_segment
        assert reference.referenced_sop_instance_uid == seg.SOPInstanceUID
        assert [int(v) for v in reference.referenced_segment_numbers] == [n]

    def value(name):
        found = group.get_measurements(name=name)
        assert len(found) == 1, name
        return float(found[0].value), found[0].unit.value

    bundled = nib.load(bundled_labels_path(ct))
    nibabel_ml = (
        int((np.asarray(bundled.dataobj) == LIVER).sum())
        * abs(float(np.linalg.det(bundled.affine[:3, :3])))
        / 1000
    )
    ml, unit = value(codes.SCT.Volume)
    assert unit == "mL" and abs(ml - nibabel_ml) / nibabel_ml < 1e-3
    assert ml == pytest.approx(mask_volume_ml(liver, ct), rel=1e-6)
    axes = axial_diameters_mm(liver, ct)
    assert value(codes.SCT.LongAxis) == (pytest.approx(axes.long_mm, rel=1e-6), "mm")
    assert value(codes.SCT.ShortAxis) == (pytest.approx(axes.short_mm, rel=1e-6), "mm")
    inside = np.asarray(ct.voxels)[liver].astype(float)
    assert value(codes.SCT.Mean) == (pytest.approx(inside.mean(), rel=1e-6), "[hnsf'U]")
    assert value(codes.SCT.StandardDeviation)[0] == pytest.approx(inside.std(ddof=1), rel=1e-6)
    assert 30 < inside.mean() < 200  # liver tissue in HU: the values are read off the CT


def test_masks_of_another_study_are_refused_with_nothing_written(study, tmp_path):
    ct, labels = study
    record = SessionRecord(ct.identity, model=ModelInfo("bird", "qwen2_5_vl", "bf16", ""))
    good = _masks(ct, labels)[0]
    foreign = NamedMask("liver", good.voxels, OTHER_STUDY, engine="tiny-sam")
    with pytest.raises(ValueError, match="another study"):
        export_masks(record, ct, tmp_path / "report.dcm", [foreign])
    other_record = SessionRecord(OTHER_STUDY, model=record.model)
    with pytest.raises(ValueError):
        export_masks(other_record, ct, tmp_path / "report.dcm", [good])
    with pytest.raises(ValueError, match="another study"):
        export_nifti([foreign], ct, tmp_path / "m.nii.gz")
    with pytest.raises(ValueError, match="grid"):
        export_seg([NamedMask("x", good.voxels[:-1], ct.identity)], ct, tmp_path / "s.dcm")
    assert list(tmp_path.iterdir()) == []


def test_a_classes_file_of_other_label_maps_is_not_overwritten(study, tmp_path):
    ct, labels = study
    theirs = tmp_path / "classes.json"
    theirs.write_text('{"1": "tumour"}')
    with pytest.raises(ValueError, match="classes.json"):
        export_nifti(_masks(ct, labels)[:1], ct, tmp_path / "m.nii.gz")
    assert theirs.read_text() == '{"1": "tumour"}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classes.json"]


def test_anonymised_exports_leave_the_patient_out_of_the_sr_and_the_seg(study, tmp_path):
    ct, labels = study
    record = SessionRecord(ct.identity, model=ModelInfo("bird", "qwen2_5_vl", "bf16", ""))
    done = export_masks(record, ct, tmp_path / "report.dcm", _masks(ct, labels)[:1], anonymise=True)
    sr, seg = pydicom.dcmread(done.sr), pydicom.dcmread(done.seg)
    for dataset in (sr, seg):
        assert dataset.PatientName == sr.PatientName
        assert dataset.PatientID == sr.PatientID
    assert sr.StudyInstanceUID == seg.StudyInstanceUID
    assert str(seg.PatientName).startswith("ANONYMOUS") and not seg.get("PatientBirthDate")


@pytest.mark.parametrize("sample, threshold", [("totalseg_ct", 150.0), ("dcm4che_mr", 300.0)])
def test_seg_frames_equal_the_source_images_thresholded(sample, threshold, tmp_path):
    """A mask made by thresholding the study must, in every SEG frame, be the same threshold of
    the source image the frame lies on, read straight from its file: independent of BirdView's
    geometry, and for the MR (a coronal acquisition, reordered to canonical axes) too."""
    study = to_canonical(load(scan(sample_ct_dir().parent / sample).entries[0]))
    mask = np.asarray(study.voxels) > threshold
    export_seg([NamedMask("bright", mask, study.identity)], study, tmp_path / "seg.dcm")
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    images = {}
    for source in study.sources:
        ds = pydicom.dcmread(source.path)
        values = ds.pixel_array * float(ds.get("RescaleSlope", 1)) + float(
            ds.get("RescaleIntercept", 0)
        )
        images[tuple(round(float(v), 2) for v in ds.ImagePositionPatient)] = values > threshold
    pixels = seg.pixel_array.astype(bool).reshape(-1, *seg.pixel_array.shape[-2:])
    framed = set()
    for f, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        where = tuple(
            round(float(v), 2) for v in item.PlanePositionSequence[0].ImagePositionPatient
        )
        np.testing.assert_array_equal(pixels[f], images[where])
        framed.add(where)
    assert framed == {k for k, v in images.items() if v.any()}  # empty images: no frame


def test_the_nifti_of_a_coronal_mr_reopens_on_the_same_voxels(tmp_path):
    mr = to_canonical(load(scan(sample_ct_dir().parent / "dcm4che_mr").entries[0]))
    mask = np.asarray(mr.voxels) > 300
    path, _ = export_nifti([NamedMask("bright", mask, mr.identity)], mr, tmp_path / "m.nii.gz")
    reopened = open_labels(path, mr)  # BirdView's reader, matched to the MR's grid
    np.testing.assert_array_equal(np.asarray(reopened.volume.voxels) == 1, mask)
    assert [c.name for c in reopened.classes] == ["bright"]
    image = nib.load(path)  # and nibabel puts voxel centres where the MR has them
    ijk = np.array([3, 5, 7])
    lps = mr.index_to_lps(ijk)
    ras = image.affine @ np.array([ijk[0], mr.shape[1] - 1 - ijk[1], ijk[2], 1.0])
    np.testing.assert_allclose(ras[:3], [-lps[0], -lps[1], lps[2]], atol=1e-3)
