"""The NIfTI-1 header, parsed with nibabel and interpreted the way ITK's NiftiImageIO does.

BirdView used to read NIfTI through SimpleITK, whose library alone is 260 MB in the installer.
The viewer now reads the header and the voxels with nibabel (pure Python), but keeps every
answer SimpleITK gave: the size, the values per voxel, the pixel type after scaling, the
spacing and the LPS origin and direction, including which of the sform and the qform wins when
they disagree. The rules follow ITK 5.4 (``itkNiftiImageIO.cxx``) and the niftilib it wraps
(``nifti1_io.c``); ``tests/core/test_nifti_itk.py`` checks them against SimpleITK.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["HeaderError", "NiftiHeader", "parse_header", "HEADER_BYTES"]

HEADER_BYTES = 348
_NIFTI2_HEADER_BYTES = 540

# datatype code: (numpy type, values per voxel stored together in one voxel)
_DATATYPES = {
    2: ("u1", 1),
    4: ("i2", 1),
    8: ("i4", 1),
    16: ("f4", 1),
    64: ("f8", 1),
    256: ("i1", 1),
    512: ("u2", 1),
    768: ("u4", 1),
    1024: ("i8", 1),
    1280: ("u8", 1),
    128: ("u1", 3),  # RGB24
    2304: ("u1", 4),  # RGBA32
}
# Named as SimpleITK names these pixel types, for the same messages as before.
_UNSUPPORTED = {
    32: "complex of 32-bit float",
    1792: "complex of 64-bit float",
    2048: "complex of 128-bit float",
    1536: "128-bit float",
}

# Intents whose values along dim[5] are the components of one voxel, not more volumes.
_VECTOR_INTENTS = {1005, 1006, 1007}  # SYMMATRIX, DISPVECT, VECTOR
_GENMATRIX_INTENT = 1004
_SCANNER_ANAT = 1

# xyz_units (the low 3 bits of xyzt_units): millimetres per unit, as ITK scales spacing.
_MM_PER_UNIT = {1: 1e3, 2: 1.0, 3: 1e-3}

_DAMAGED = "its NIfTI header is damaged (invalid dimensions or data type)"


class HeaderError(ValueError):
    """The header cannot be read; ``reason`` says why, ``unsupported`` if the file is valid
    but holds pixels BirdView cannot show."""

    def __init__(self, reason: str, *, unsupported: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unsupported = unsupported


@dataclass(frozen=True)
class NiftiHeader:
    """What ITK reports about a NIfTI-1 file, plus where its voxels are."""

    dim: tuple[int, ...]  # dim[0..7] as niftilib repairs them
    size: tuple[int, ...]  # as ITK reports it: (x, y[, z[, t...]])
    components: int
    disk_dtype: np.dtype  # one stored value, in the file's byte order
    interleaved: bool  # RGB(A): a voxel's values lie together; vectors are stored as volumes
    slope: float
    inter: float
    bitpix: int
    vox_offset: float
    qform_code: int
    sform_code: int
    spacing: tuple[float, ...]  # the first min(3, rank) axes, in mm
    origin: tuple[float, ...]  # LPS, mm
    direction: np.ndarray  # LPS, min(3, rank) square

    @property
    def rescaled(self) -> bool:
        """ITK's rule: scale unless the slope is 0 (meaning none) or the scaling is identity."""
        eps = np.finfo(float).eps
        return abs(self.slope) > eps and (abs(self.slope - 1) > eps or abs(self.inter) > eps)

    @property
    def out_dtype(self) -> np.dtype:
        """The pixel type SimpleITK gave: scaled integers become float32."""
        native = self.disk_dtype.newbyteorder("=")
        if self.rescaled and native.kind in "iu":
            return np.dtype(np.float32)
        return native


def parse_header(raw: bytes) -> NiftiHeader:
    """Interpret the first 348 bytes of a NIfTI-1 file (fewer if the file is shorter).

    Raises:
        HeaderError: the bytes are not a readable NIfTI-1 header.
    """
    from nibabel.nifti1 import Nifti1Header

    endian = _endianness(raw)
    # Without NIfTI's magic, niftilib reads the header as Analyze 7.5: the voxels still follow
    # the header, but qform and sform do not exist. ("ni1" in a .nii file reads as "n+1".)
    is_nifti = raw[344:347] in (b"n+1", b"ni1")
    try:
        header = Nifti1Header(raw, endianness=endian, check=False)
        fields = {key: header[key] for key in header.keys()}  # noqa: SIM118 (not a dict)
    except Exception as exc:  # nibabel's own checks: the header is not NIfTI-1
        raise HeaderError(_DAMAGED) from exc
    dim = _repaired_dim(fields["dim"])
    datatype = int(fields["datatype"])
    if datatype in _UNSUPPORTED:
        kind = _UNSUPPORTED[datatype]
        if kind.startswith("complex"):
            raise HeaderError(f"its pixels are complex numbers ({kind})", unsupported=True)
        raise HeaderError(f"its pixels are {kind}s, which BirdView cannot show", unsupported=True)
    if datatype not in _DATATYPES:
        raise HeaderError(_DAMAGED)
    type_code, interleaved = _DATATYPES[datatype]
    size, components = _itk_size(dim, int(fields["intent_code"]))
    if interleaved > 1:
        components = interleaved
    pixdim = [float(v) for v in fields["pixdim"]]
    for axis in range(1, dim[0] + 1):  # niftilib: zero or non-finite spacing becomes 1
        if pixdim[axis] == 0 or not math.isfinite(pixdim[axis]):
            pixdim[axis] = 1.0
    slope = _fixed(fields["scl_slope"])
    if abs(slope) < np.finfo(float).eps:
        slope = 1.0
    qform_code = max(int(fields["qform_code"]), 0) if is_nifti else 0
    sform_code = max(int(fields["sform_code"]), 0) if is_nifti else 0
    spacing, origin, direction = _itk_geometry(fields, len(size), pixdim, qform_code, sform_code)
    return NiftiHeader(
        dim=dim,
        size=size,
        components=components,
        disk_dtype=np.dtype(type_code).newbyteorder(endian),
        interleaved=interleaved > 1,
        slope=slope,
        inter=_fixed(fields["scl_inter"]),
        bitpix=int(fields["bitpix"]),
        vox_offset=float(fields["vox_offset"]),
        qform_code=qform_code,
        sform_code=sform_code,
        spacing=spacing,
        origin=origin,
        direction=direction,
    )


def _fixed(value) -> float:
    """niftilib's FIXED_FLOAT: a non-finite header number reads as 0."""
    value = float(value)
    return value if math.isfinite(value) else 0.0


def _endianness(raw: bytes) -> str:
    """niftilib's tests: NIfTI's magic (or Analyze's header size) makes the file a NIfTI-1
    header; dim[0] in 1..7 in one byte order says which order."""
    if not raw:
        raise HeaderError("the file is empty")
    sizes = {int.from_bytes(raw[:4], order) for order in ("little", "big")}
    if _NIFTI2_HEADER_BYTES in sizes:
        raise HeaderError("it is a NIfTI-2 file, which BirdView cannot read; convert it to NIfTI-1")
    has_magic = raw[344:347] in (b"n+1", b"ni1")
    if not has_magic and HEADER_BYTES not in sizes:
        raise HeaderError("it is not a NIfTI file")
    if len(raw) < HEADER_BYTES:
        raise HeaderError(_DAMAGED)
    for order, mark in (("little", "<"), ("big", ">")):
        if 1 <= int.from_bytes(raw[40:42], order, signed=True) <= 7:
            return mark
    raise HeaderError(_DAMAGED)


def _repaired_dim(raw_dim: np.ndarray) -> tuple[int, ...]:
    """dim[] as niftilib keeps it: every used axis at least 1 long, unused axes 1 (or 0)."""
    dim = [int(n) for n in raw_dim]
    rank = dim[0]
    if any(n <= 0 for n in dim[1 : rank + 1]):
        raise HeaderError(_DAMAGED)
    for axis in range(rank + 1, 8):
        if dim[axis] not in (0, 1):
            dim[axis] = 1
    return tuple(dim)


def _itk_size(dim: tuple[int, ...], intent: int) -> tuple[tuple[int, ...], int]:
    """ITK's image size and values per voxel for a header's dim[] and intent."""
    if intent == _GENMATRIX_INTENT:
        raise HeaderError(
            "its voxels hold matrices (intent NIFTI_INTENT_GENMATRIX), which BirdView cannot show",
            unsupported=True,
        )
    if intent in _VECTOR_INTENTS:
        rank = next((axis for axis in (4, 3, 2) if dim[axis] > 1), 1)
        components = dim[5]
        if components < 1:
            raise HeaderError(_DAMAGED)
    else:
        # ITK drops trailing axes of length 1 beyond the third (scanners write 4D, T = 1).
        rank = dim[0]
        while rank > 3 and dim[rank] == 1:
            rank -= 1
        components = 1
    return tuple(dim[1 : rank + 1]), components


# -- geometry --------------------------------------------------------------------------------


def _itk_geometry(
    fields: dict, rank: int, pixdim: list[float], qform_code: int, sform_code: int
) -> tuple[tuple[float, ...], tuple[float, ...], np.ndarray]:
    """Spacing, LPS origin and direction as ITK derives them from the header."""
    n = min(rank, 3)
    xyz_scale = _MM_PER_UNIT.get(int(fields["xyzt_units"]) & 0x07, 1.0)
    # A negative pixdim flips its axis in the qform but is reported as a positive spacing.
    spacing = tuple(abs(pixdim[axis + 1]) * xyz_scale for axis in range(n))
    if qform_code == 0 and sform_code == 0:
        return spacing, (0.0,) * n, np.eye(n)  # no orientation: ITK's identity
    qto = _qform_matrix(fields, pixdim) if qform_code > 0 else np.diag([*pixdim[1:4], 1.0])
    sto = np.zeros((4, 4))
    if sform_code > 0:
        sto = np.array([fields["srow_x"], fields["srow_y"], fields["srow_z"], [0, 0, 0, 1]])
    matrix = _chosen_matrix(qto.astype(np.float32), sto.astype(np.float32), qform_code, sform_code)
    flip = np.array([-1.0, -1.0, 1.0])  # RAS → LPS
    origin = tuple(float(v) for v in (flip * matrix[:3, 3] * xyz_scale)[:n])
    direction = (flip[:, None] * matrix[:3, :3])[:n, :n]
    lengths = np.linalg.norm(direction, axis=0)
    direction = direction / np.where(lengths == 0, 1.0, lengths)
    return spacing, origin, direction


def _qform_matrix(fields: dict, pixdim: list[float]) -> np.ndarray:
    """niftilib's quaternion → matrix (nifti_quatern_to_mat44), in double precision."""

    b, c, d = (_fixed(fields[key]) for key in ("quatern_b", "quatern_c", "quatern_d"))
    a = 1.0 - (b * b + c * c + d * d)
    if a < 1e-7:  # a 180° rotation: renormalise b, c, d
        a = 1.0 / math.sqrt(b * b + c * c + d * d)
        b, c, d, a = b * a, c * a, d * a, 0.0
    else:
        a = math.sqrt(a)
    scale = list(pixdim[1:4])
    if pixdim[0] < 0:  # qfac: a left-handed grid
        scale[2] = -scale[2]
    rotation = np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
            [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
            [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
        ]
    )
    matrix = np.eye(4)
    matrix[:3, :3] = rotation * np.array(scale)
    matrix[:3, 3] = [_fixed(fields[key]) for key in ("qoffset_x", "qoffset_y", "qoffset_z")]
    return matrix


def _chosen_matrix(qto: np.ndarray, sto: np.ndarray, qform_code: int, sform_code: int):
    """ITK 5.4's choice between the sform and the qform (SetImageIOOrientationFromNIfTI).

    The sform wins when it equals the qform, when it is the only one, when it is labelled
    scanner-anatomical, or when both are set and describe the same grid; otherwise the
    qform. An sform with shear and no qform cannot be shown as ITK shows images.
    """
    q = qto.astype(float)
    s = sto.astype(float)
    with np.errstate(invalid="ignore"):  # ITK tests "differs by more than": NaN never does
        prefer_sform = not (
            np.any(np.abs(s[:3, :3] - q[:3, :3]) > 1e-5)
            or np.abs(s[:, 3] - q[:, 3]).sum() > 1e-7
            or np.abs(s[3] - q[3]).sum() > 1e-7
        )
    if (not prefer_sform or sform_code != 0) and _rigid_with_scale(s):
        if qform_code == 0 and sform_code != 0:
            prefer_sform = True
        elif sform_code == _SCANNER_ANAT:
            prefer_sform = True
        elif qform_code != 0 and sform_code != 0:
            prefer_sform = _same_grid(s, q)
    if prefer_sform:
        return s
    if qform_code != 0:
        return q
    raise HeaderError(
        "its sform has shear and it has no qform; BirdView shows only rotated grids",
        unsupported=True,
    )


def _rigid_with_scale(matrix: np.ndarray) -> bool:
    """An invertible affine whose columns, once normalised, are orthonormal (ITK's test)."""
    if np.abs(matrix[3] - [0, 0, 0, 1]).sum() > np.finfo(np.float32).eps:
        return False
    top = matrix[:3, :3]
    if not np.all(np.isfinite(matrix)) or abs(np.linalg.det(top)) < 1e-12:
        return False
    lengths = np.linalg.norm(top, axis=0)
    if np.any(lengths == 0):
        return False
    columns = top / lengths
    return bool(np.all(np.abs(columns @ columns.T - np.eye(3)) <= 1e-4))


def _same_grid(s: np.ndarray, q: np.ndarray) -> bool:
    """ITK compares the two by SVD (same scales, same rotation) and offsets, within 1e-4.

    ITK's rotation test compares only the left singular vectors of its own SVD routine, so
    for two forms that really differ (say by a flipped axis) its answer depends on that
    routine's sign conventions. This test asks the question ITK means to ask (S·Q⁻¹ near
    identity); the two agree whenever the forms describe the same grid.
    """
    try:
        relative = s[:3, :3] @ np.linalg.inv(q[:3, :3])
    except np.linalg.LinAlgError:
        return False
    scales_s = np.linalg.svd(s[:3, :3], compute_uv=False)
    scales_q = np.linalg.svd(q[:3, :3], compute_uv=False)
    return bool(
        np.all(np.abs(relative - np.eye(3)) <= 1e-4)
        and np.all(np.abs(scales_s - scales_q) <= 1e-4)
        and np.all(np.abs(s[:3, 3] - q[:3, 3]) <= 1e-4)
        and np.all(np.abs(s[3] - q[3]) <= 1e-4)
    )
