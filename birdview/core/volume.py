"""`Volume`: the one image type every room of BirdView speaks.

Conventions (the same as ITK and DICOM, so readers convert nothing but the array order):

- ``voxels`` is indexed ``[k, j, i]`` = (slice, row, column), with an optional trailing RGB
  axis. A 2D image is a volume with one slice.
- ``spacing_mm``, ``origin_lps_mm`` and the columns of ``direction`` are in index order
  (i, j, k): column c of ``direction`` is the unit vector, in patient LPS coordinates, along
  which index c increases. ``origin_lps_mm`` is the centre of voxel (0, 0, 0).
- Patient coordinates are DICOM's LPS: +x towards the patient's left, +y posterior,
  +z superior. NIfTI readers convert from RAS at their boundary.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

__all__ = ["SliceSource", "Volume", "short_id"]

# One number per Volume ever made in this process (next() on a count is atomic under the GIL,
# so loader threads may build volumes at once).
_TOKENS = itertools.count(1)


@dataclass(frozen=True)
class SliceSource:
    """Where one slice of a volume came from: a file, and a frame number for multi-frame files.

    DICOM slices also keep what identifies them to a radiologist: the file's (0020,0013)
    Instance Number and (0020,1041) Slice Location, None when absent (and for the frames of a
    multi-frame file, which share the file's Instance Number).
    """

    path: str
    frame: int | None = None
    instance_number: int | None = None
    location_mm: float | None = None


@dataclass(frozen=True, eq=False)
class Volume:
    """An immutable image volume with its patient geometry.

    Attributes:
        voxels: read-only array (slices, rows, cols) or (slices, rows, cols, 3); rescaled values
            (Hounsfield units for CT), MONOCHROME1 already inverted.
        spacing_mm: voxel size along (i, j, k) = (column, row, slice).
        origin_lps_mm: patient position of the centre of voxel (0, 0, 0).
        direction: 3×3; column c is the LPS direction of index axis c.
        modality: DICOM-style modality code ("CT", "MR", "OT" when unknown...).
        window: the initial (center, width) to display, or None to derive one.
        metadata: a small dict of selected header values (patient_name, patient_id,
            study_date, study_description, series_description, series_number, body_part,
            manufacturer, ...). Shown on screen; never logged.
        sources: one `SliceSource` per acquired slice, in order along index axis
            ``source_axis`` (empty when not file-backed).
        warnings: problems found while reading (uneven spacing, gantry tilt, ...).
        has_geometry: False when the file carried no patient orientation (PNG, JPEG, a
            DICOM without Image Orientation); then orientation letters are unknown.
        series_uid: the DICOM Series Instance UID where there is one.
        source_axis: the index axis (0 = i, 1 = j, 2 = k) the acquired slices run along; 2
            as read, another after reorienting a coronal or sagittal acquisition.
    """

    voxels: np.ndarray
    spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin_lps_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    modality: str = "OT"
    window: tuple[float, float] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    sources: tuple[SliceSource, ...] = ()
    warnings: tuple[str, ...] = ()
    has_geometry: bool = True
    series_uid: str = ""
    source_axis: int = 2

    def __post_init__(self) -> None:
        voxels = np.asarray(self.voxels)
        if voxels.ndim == 2:
            voxels = voxels[np.newaxis]
        if voxels.ndim not in (3, 4) or (voxels.ndim == 4 and voxels.shape[3] != 3):
            raise ValueError(
                f"Unable to build a volume as the voxel array has shape {voxels.shape!r}; "
                "expected (slices, rows, cols) or (slices, rows, cols, 3)"
            )
        if min(voxels.shape[:3]) < 1:
            raise ValueError(
                f"Unable to build a volume as the voxel array is empty: {voxels.shape!r}"
            )
        if voxels.flags.writeable:
            voxels = voxels.view()
            voxels.flags.writeable = False
        direction = np.array(self.direction, dtype=float).reshape(3, 3)
        direction.flags.writeable = False
        spacing = tuple(float(s) for s in self.spacing_mm)
        if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
            raise ValueError(
                f"Unable to build a volume as the spacing {self.spacing_mm!r} is not positive"
            )
        object.__setattr__(self, "voxels", voxels)
        object.__setattr__(self, "direction", direction)
        object.__setattr__(self, "spacing_mm", spacing)
        object.__setattr__(self, "origin_lps_mm", tuple(float(v) for v in self.origin_lps_mm))
        object.__setattr__(self, "sources", tuple(self.sources))
        object.__setattr__(self, "warnings", tuple(self.warnings))
        object.__setattr__(self, "_token", next(_TOKENS))

    # -- shape -------------------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, int, int]:
        """(slices, rows, cols), without the colour axis."""
        k, j, i = self.voxels.shape[:3]
        return (k, j, i)

    @property
    def is_rgb(self) -> bool:
        return self.voxels.ndim == 4

    # -- geometry ----------------------------------------------------------------------------

    def index_to_lps(self, ijk: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        """Patient LPS position (mm) of continuous index (i, j, k); accepts (..., 3) arrays."""
        ijk = np.asarray(ijk, dtype=float)
        scaled = ijk * np.asarray(self.spacing_mm)
        return np.asarray(self.origin_lps_mm) + scaled @ self.direction.T

    def lps_to_index(self, xyz_lps: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        """Continuous (i, j, k) index of patient LPS position(s) in mm."""
        offset = np.asarray(xyz_lps, dtype=float) - np.asarray(self.origin_lps_mm)
        return (offset @ np.linalg.inv(self.direction).T) / np.asarray(self.spacing_mm)

    def source_at(self, ijk: tuple[int, int, int]) -> SliceSource | None:
        """The file (and frame) the voxel at integer index (i, j, k) was read from."""
        n = int(ijk[self.source_axis])
        return self.sources[n] if 0 <= n < len(self.sources) else None

    @property
    def slice_normal(self) -> np.ndarray:
        return self.direction[:, 2]

    # -- identity ----------------------------------------------------------------------------

    @property
    def token(self) -> int:
        """A number no other volume made in this process has, for keying caches of what was
        drawn from this object. Unlike ``id()`` it is never reused after the volume is
        garbage-collected; unlike `identity` it costs nothing and tells apart two objects
        of the same study (each `with_changes` copy gets its own)."""
        return self._token

    @property
    def short_id(self) -> str:
        """A short, patient-free name for logs: a hash of the series UID (or sources)."""
        key = self.series_uid or "|".join(s.path for s in self.sources[:1])
        return short_id(key)

    @cached_property
    def identity(self) -> str:
        """Which study this is, for keeping each study's conversation and exports apart.

        ``"series-sha256:<hex>"`` (the Series Instance UID and the shape) for DICOM with a
        UID; otherwise ``"content-sha256:<hex>"``, a hash of the voxels and their geometry,
        because files without UIDs (NIfTI, PNG, DICOM with blank UIDs) can share a name or a
        path with another study. Either way it holds no patient data. Computed once; the
        content hash reads every voxel (about 10 ms per 10 MB), so loaders compute it off
        the GUI thread.
        """
        shape = "x".join(str(n) for n in self.voxels.shape)
        if self.series_uid:
            digest = hashlib.sha256(f"{self.series_uid}|{shape}".encode())
            return "series-sha256:" + digest.hexdigest()
        digest = hashlib.sha256()
        geometry = (self.voxels.dtype.str, shape, self.spacing_mm, self.origin_lps_mm)
        digest.update(repr(geometry).encode())
        digest.update(np.ascontiguousarray(self.direction).tobytes())
        for plane in self.voxels:  # slice by slice: no full-volume copy of a strided array
            digest.update(np.ascontiguousarray(plane).tobytes())
        return "content-sha256:" + digest.hexdigest()

    def with_changes(self, **changes: Any) -> Volume:
        """A copy with some fields replaced (volumes themselves never change)."""
        return replace(self, **changes)

    def __repr__(self) -> str:
        return (
            f"Volume(shape={self.voxels.shape}, dtype={self.voxels.dtype}, "
            f"spacing_mm={tuple(round(s, 4) for s in self.spacing_mm)}, "
            f"modality={self.modality!r}, id={self.short_id})"
        )


def short_id(key: str) -> str:
    """An 8-hex-digit hash of an identifier, for logs and file names without patient data."""
    return hashlib.sha1(key.encode("utf-8", "replace")).hexdigest()[:8]
