"""VoxTell (DKFZ, the ``voxtell`` package, Apache-2.0): free text → a 3D mask of the whole
volume, through VoxTell's own `VoxTellPredictor` (its preprocessing, sliding window and
model code), opened from local folders only.

The checkpoint folder is VoxTell's (nnU-Net's) layout, e.g. ``voxtell_v1.1`` of the hub's
``mrokuss/VoxTell``::

    plans.json, fold_0/checkpoint_final.pth

and its text encoder (Qwen3-Embedding-4B) is a Hugging Face folder found at
``<folder>/text_encoder`` or beside the folder as ``Qwen3-Embedding-4B``. VoxTell's bank of
precomputed prompt embeddings is used where present (``<folder>/text_embeddings.npz``, or the
hub's layout ``../embeddings/<folder name>/text_embeddings.npz``): a prompt found there needs
no text encoder. Nothing is ever downloaded: every path is given to the predictor, and its
own download of the bank is switched off.

Geometry: VoxTell takes an array as nnU-Net's `NibabelIOWithReorient` reads a NIfTI file —
reoriented to RAS with nibabel's ``io_orientation`` (each index axis to its nearest patient
axis), then transposed to (z, y, x) — and gives the mask back on that grid (it crops to the
non-zero box and pads it back itself, and does not resample). `to_voxtell` and
`from_voxtell` make that array from a `Volume`'s voxels and put a mask back on them, voxel
for voxel.

The checkpoint is a PyTorch pickle, which VoxTell opens with ``weights_only=False``; BirdView
first opens it with torch's weights-only loader (tensors, numbers, strings, numpy scalars) and
refuses one that needs anything more, since unpickling anything else can run code.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from birdview.inference.errors import ModelLoadError

__all__ = ["Engine", "check_folder", "from_voxtell", "hashed_files", "ras_affine", "to_voxtell"]

logger = logging.getLogger(__name__)

CHECKPOINT = "fold_0/checkpoint_final.pth"
ENCODER_NAME = "Qwen3-Embedding-4B"
INSTALL = "pip install 'birdview[voxtell]'"


def ras_affine(volume: Any) -> np.ndarray:
    """The 4 × 4 affine from (i, j, k) voxel indices to RAS millimetres (NIfTI's convention)
    of a `Volume` (whose direction and origin are LPS)."""
    to_ras = np.diag([-1.0, -1.0, 1.0])
    affine = np.eye(4)
    affine[:3, :3] = to_ras @ np.asarray(volume.direction) @ np.diag(volume.spacing_mm)
    affine[:3, 3] = to_ras @ np.asarray(volume.origin_lps_mm)
    return affine


def to_voxtell(voxels_kji: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """A (k, j, i) array of a volume with ``affine`` (`ras_affine`) as VoxTell takes it: the
    array nnU-Net's `NibabelIOWithReorient` reads from that volume's NIfTI file."""
    from nibabel.orientations import apply_orientation, io_orientation

    ras_xyz = apply_orientation(np.asarray(voxels_kji).transpose(2, 1, 0), io_orientation(affine))
    return np.ascontiguousarray(ras_xyz.transpose(2, 1, 0))


def from_voxtell(array: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """A mask VoxTell made from `to_voxtell`'s array, back on the volume's (k, j, i) voxels
    (the reverse of the reorientation, as nnU-Net's ``write_seg`` does it)."""
    from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation, ornt_transform

    back = ornt_transform(axcodes2ornt("RAS"), io_orientation(affine))
    ijk = apply_orientation(np.asarray(array).transpose(2, 1, 0), back)
    return np.ascontiguousarray(ijk.transpose(2, 1, 0))


def check_folder(folder: Path) -> dict[str, Path | None]:
    """The files VoxTell needs from ``folder``: checkpoint, text encoder folder and prompt
    bank (None where absent; the encoder or the bank may be missing, not both).

    Raises:
        ModelLoadError: the package is not installed, or the folder lacks its files.
    """
    if importlib.util.find_spec("voxtell") is None:
        raise ModelLoadError(
            f"Unable to load the VoxTell model at '{folder}' as the voxtell package is not "
            f"installed; install it with {INSTALL}"
        )
    for name in ("plans.json", CHECKPOINT):
        if not (folder / name).is_file():
            raise ModelLoadError(
                f"Unable to load the VoxTell model at '{folder}' as it has no {name}; choose "
                "the model's own folder (e.g. voxtell_v1.1, with plans.json and fold_0/)"
            )
    found = {"checkpoint": folder / CHECKPOINT, "encoder": None, "bank": None}
    for candidate in (folder / "text_encoder", folder.parent / ENCODER_NAME):
        if (candidate / "config.json").is_file():
            found["encoder"] = candidate
            break
    for candidate in (
        folder / "text_embeddings.npz",
        folder.parent / "embeddings" / folder.name / "text_embeddings.npz",
    ):
        if candidate.is_file():
            found["bank"] = candidate
            break
    if found["encoder"] is None and found["bank"] is None:
        raise ModelLoadError(
            f"Unable to load the VoxTell model at '{folder}' as its text encoder is missing: "
            f"put {ENCODER_NAME} in '{folder / 'text_encoder'}' or beside the folder as "
            f"'{folder.parent / ENCODER_NAME}'"
        )
    return found


def hashed_files(folder: Path) -> list[tuple[str, Path]]:
    """(name in the hash, file) for what decides VoxTell's masks: plans, checkpoint, and the
    text encoder's config and weights."""
    found = check_folder(folder)
    files = [("plans.json", folder / "plans.json"), (CHECKPOINT, folder / CHECKPOINT)]
    encoder = found["encoder"]
    if encoder is not None:
        files.append(("text_encoder/config.json", encoder / "config.json"))
        files += [(f"text_encoder/{p.name}", p) for p in sorted(encoder.glob("*.safetensors"))]
    return files


class Engine:
    """VoxTell's predictor on ``device``; ``dtype`` is fp32 (VoxTell runs its own mixed
    precision on CUDA)."""

    video = False
    volumetric = True

    def __init__(self, folder: Path, device: str, dtype: Any) -> None:
        import torch

        self.files = check_folder(folder)
        _check_weights_only(folder, self.files["checkpoint"])
        from voxtell.inference.predictor import VoxTellPredictor

        encoder, bank = self.files["encoder"], self.files["bank"]
        self.predictor = VoxTellPredictor(
            model_dir=str(folder),
            device=torch.device(device),
            # Only ever a local folder; loaded when a prompt is not in the bank.
            text_encoding_model=str(encoder or folder / "text_encoder"),
            embedding_bank=str(bank) if bank is not None else None,
            use_precomputed_embeddings=False,  # never VoxTell's own download
        )
        self.model = self.predictor.network
        self.folder, self.device = folder, device

    def segment_volume(
        self,
        volume: Any,
        text: str,
        cancel: Callable[[], bool],
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray | None:
        """The (k, j, i) bool mask of what ``text`` names in ``volume``; None when ``cancel()``
        turned True during the sliding window. ``progress(done, total)`` follows each of its
        patches (VoxTell's own hook, where the cancel is checked too)."""
        from voxtell.inference.predictor import InferenceCancelled

        def after_patch(done: int, total: int) -> bool:
            if progress is not None:
                progress(int(done), int(total))
            return not cancel()  # False stops VoxTell's sliding window

        self._check_prompt(text)
        affine = ras_affine(volume)
        image = to_voxtell(volume.voxels, affine).astype(np.float32)[None]
        try:
            found = self.predictor.predict_single_image(
                image, [text], progress_callback=after_patch
            )
        except InferenceCancelled:
            return None
        logger.info("VoxTell %s → %d voxels", image.shape[1:], int(found[0].sum()))
        return from_voxtell(found[0] != 0, affine)

    def _check_prompt(self, text: str) -> None:
        bank = self.predictor.embedding_bank or {}
        if self.files["encoder"] is None and text.lower() not in bank:
            raise ValueError(
                f"Unable to segment {text!r} with VoxTell as it is not in the precomputed "
                f"prompt bank and the text encoder ({ENCODER_NAME}) is not installed beside "
                f"the model ('{self.folder / 'text_encoder'}')"
            )


def _check_weights_only(folder: Path, checkpoint: Path) -> None:
    """Refuse a checkpoint that unpickles anything but data (see the module's note)."""
    import pickle

    import torch

    try:
        from numpy._core.multiarray import scalar  # numpy 2
    except ImportError:  # numpy 1
        from numpy.core.multiarray import scalar
    # numpy scalars and dtypes (nnU-Net's training log) rebuild data only; pickles of numpy
    # 1 name the scalar's module numpy.core.
    allowed: list[Any] = [np.dtype, scalar, (scalar, "numpy.core.multiarray.scalar")]
    allowed += sorted({type(np.dtype(t)) for t in "?bhilqBHILQefdgFDG"}, key=str)
    try:
        with torch.serialization.safe_globals(allowed):
            torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:
        raise ModelLoadError(
            f"Unable to load the VoxTell model at '{folder}' as {CHECKPOINT} holds more than "
            f"weights and numbers, and unpickling it could run code ({str(exc)[:200]})"
        ) from exc
    except (OSError, RuntimeError, ValueError) as exc:
        raise ModelLoadError(
            f"Unable to load the VoxTell model at '{folder}' as {CHECKPOINT} cannot be read "
            f"({type(exc).__name__}: {str(exc)[:200]})"
        ) from exc
