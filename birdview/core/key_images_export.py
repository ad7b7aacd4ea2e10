"""Exporting a study's key images: one annotated PNG per key image, and for a DICOM study a
Key Object Selection document (highdicom) that points at the source images of those on the
acquisition plane.

The PNGs are `exports.export_png` of each key slice with its boxes and the user's measurements
and annotations, named ``<stem>-key-<plane>-<slice>.png`` (slices numbered as the views number
them) so no name carries patient data. The KOS has the document title "Of Interest" (DCM
113000) and a description that names the BirdView study identity; a key image on a reformatted
plane has no single source image and is left out of it (with the reason returned), but still
has its PNG.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from birdview.core import geometry
from birdview.core.box import Box
from birdview.core.display import Window
from birdview.core.exports import export_png, write_export
from birdview.core.geometry import Plane
from birdview.core.key_images import KeyImage
from birdview.core.measure import Measurement
from birdview.core.session_store import SessionRecord, ensure_same_study
from birdview.core.volume import Volume

__all__ = ["KeyImagesExport", "export_key_images", "export_key_object_selection", "shown_number"]

logger = logging.getLogger(__name__)

BoxesOn = Callable[[Plane, int], tuple[Sequence[Box], Sequence[int]]]  # (boxes, colour slots)


@dataclass(frozen=True)
class KeyImagesExport:
    """What `export_key_images` wrote, and why a key image is missing from the KOS."""

    pngs: tuple[str, ...]
    kos: str | None
    skipped: tuple[str, ...]


def export_key_images(
    record: SessionRecord,
    volume: Volume,
    folder: str | os.PathLike,
    keys: Sequence[KeyImage],
    *,
    window: Window,
    stem: str,
    boxes_on: BoxesOn | None = None,
    measurements: Sequence[Measurement] = (),
    anonymise: bool = False,
) -> KeyImagesExport:
    """Write the PNGs of ``keys`` into ``folder`` and, for a DICOM study, the KOS beside them.

    Raises:
        ValueError: the record is about another study, or there are no key images.
        OSError: a file could not be written.
    """
    ensure_same_study(record, volume)
    if not keys:
        raise ValueError("Unable to export key images as no slice is marked as one")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pngs = []
    for key in keys:
        boxes, colours = boxes_on(key.plane, key.slice_index) if boxes_on else ((), ())
        path = folder / f"{stem}-key-{key.plane.value}-{shown_number(volume, key)}.png"
        export_png(
            record, volume, path, plane=key.plane, slice_index=key.slice_index, window=window,
            boxes=boxes, colours=list(colours) or None, anonymise=anonymise,
            zoom=2.0 if min(volume.shape[1:3]) < 300 else 1.0, measurements=measurements,
        )  # fmt: skip
        pngs.append(os.fspath(path))
    kos, skipped = None, ()
    if _is_dicom(volume):
        kos_path = folder / f"{stem}-key-images.dcm"
        skipped = export_key_object_selection(volume, keys, kos_path, anonymise=anonymise)
        kos = os.fspath(kos_path) if kos_path.exists() else None
    return KeyImagesExport(tuple(pngs), kos, tuple(skipped))


def export_key_object_selection(
    volume: Volume, keys: Sequence[KeyImage], path: str | os.PathLike, *, anonymise: bool = False
) -> list[str]:
    """Write a KOS listing the source images of ``keys``; returns why some were left out.
    Nothing is written when none of them has a source image."""
    import highdicom as hd  # only loaded when a KOS is written
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    from birdview.core._sr_sources import SourceImages, anonymise_header

    sources = SourceImages(volume, anonymise)
    referenced, skipped = {}, []
    for key in keys:
        found = sources.source_of(key.plane, key.slice_index)
        if found is None:
            where = f"{key.plane.value} {shown_number(volume, key)}"
            skipped.append(f"key image {where}: a reformatted slice has no source image")
            continue
        ds = found[0]
        referenced[str(ds.SOPInstanceUID)] = ds
    if not referenced:
        return skipped
    content = hd.ko.KeyObjectSelection(
        document_title=codes.DCM.OfInterest,
        referenced_objects=list(referenced.values()),
        description=f"Key images marked in BirdView (study identity {volume.identity})",
    )
    document = hd.ko.KeyObjectSelectionDocument(
        evidence=sources.evidence(),
        content=content,
        series_instance_uid=generate_uid(),
        series_number=9902,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="BirdView",
    )
    if anonymise:
        anonymise_header(document)
    buffer = io.BytesIO()
    document.save_as(buffer, enforce_file_format=True)
    write_export(path, buffer.getvalue())
    logger.info("exported a KOS of %d key images for %s", len(referenced), volume.short_id)
    return skipped


def shown_number(volume: Volume, key: KeyImage) -> int:
    """The slice's number as the views count it (from 1, in reading order)."""
    return geometry.reading_position(volume, key.plane, key.slice_index) + 1


def _is_dicom(volume: Volume) -> bool:
    from birdview.core._sr_sources import is_dicom

    return bool(volume.sources) and bool(volume.modality) and is_dicom(volume.sources[0].path)
