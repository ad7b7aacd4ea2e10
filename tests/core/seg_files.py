"""A DICOM SEG of the bundled sample CT, written by highdicom from the CT's own files and the
bundled TotalSegmentator label map (no SEG of it is published; its label map is)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.conftest import REPO

BUNDLED_LABELS = REPO / "resources" / "samples" / "totalseg_ct_labels" / "example_seg_dicom.nii.gz"


def write_sample_seg(path: Path, ct) -> tuple[list[str], np.ndarray]:
    """Write the bundled label map of ``ct`` (the canonical sample CT) as a binary SEG at
    ``path``; returns the segment names (segment n = names[n - 1]) and the segment number
    each voxel should get."""
    import pydicom

    from birdview.core.labels_io import open_labels

    nifti = open_labels(BUNDLED_LABELS, ct)
    labels = np.asarray(nifti.volume.voxels)
    numbers = np.zeros(labels.max() + 1, dtype=np.uint8)
    numbers[[c.value for c in nifti.classes]] = np.arange(1, len(nifti.classes) + 1)
    sources = []
    for source in ct.sources:  # canonical order: slice k of the label map
        dataset = pydicom.dcmread(source.path)
        # The sample's UIDs are blank (see its ATTRIBUTION.md); highdicom needs them.
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID
        dataset.SOPClassUID = dataset.file_meta.MediaStorageSOPClassUID
        dataset.StudyInstanceUID = dataset.StudyInstanceUID or "1.2.826.0.1.3680043.8.498.1"
        dataset.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.2"
        sources.append(dataset)
    write_binary_seg(path, sources, numbers[labels], [c.name for c in nifti.classes])
    return [c.name for c in nifti.classes], numbers[labels]


def write_binary_seg(path: Path, sources: list, segments: np.ndarray, names: list[str]) -> None:
    """Write a binary SEG at ``path`` over ``sources`` (datasets in slice order) whose voxel
    value n (1-based) is segment n, named ``names[n - 1]``, as TotalSegmentator's output."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    algorithm = hd.AlgorithmIdentificationSequence(
        name="TotalSegmentator", version="1", family=codes.cid7162.ArtificialIntelligence
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=n,
            segment_label=name,
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        for n, name in enumerate(names, start=1)
    ]
    hd.seg.Segmentation(
        source_images=sources,
        pixel_array=segments,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=100,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="BirdView tests",
        manufacturer_model_name="test",
        software_versions="0",
        device_serial_number="0",
    ).save_as(path)
