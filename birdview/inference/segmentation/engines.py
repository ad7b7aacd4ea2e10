"""The segmentation engines BirdView knows: data only (no torch), like `core.families`.

An engine says how its checkpoints are recognised (``config.model_type``, or for a folder
that is no Hugging Face checkpoint, the files that make it one: VoxTell's nnU-Net layout),
which module wraps it, the precisions it may load in, what it is prompted with (a box, or
text for SAM3 and VoxTell), and whether it carries a mask from slice to slice with its own
memory (SAM2's video predictor), needs a prompt on every slice, or segments the whole volume
at once (VoxTell).

4-bit is allowed for none: SAM-family models are small next to a language model (SAM ViT-B
94 M, SAM2.1 Hiera-L 224 M, SAM3 about 850 M parameters), and no measurement here shows masks
holding up under nf4, so fp32 and bf16 only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SegEngine", "all_engines", "for_folder", "for_model_type", "model_types"]


@dataclass(frozen=True)
class SegEngine:
    """One segmentation engine.

    Attributes:
        key: its name in messages and logs.
        title: for people ("SAM / MedSAM").
        model_types: the ``config.model_type`` values it opens.
        module: the module under ``birdview.inference.segmentation`` holding ``Engine``.
        precisions: what it may be loaded in ("fp32", "bf16").
        four_bit: whether nf4/int8 loading is allowed.
        video: True when it propagates over slices with its own memory; False when
            propagation prompts every slice with a box from the slice before.
        prompts: what it is prompted with: "box" (segment what the box frames) or "text"
            (segment every instance of a named concept).
        folder_files: for checkpoints without a ``config.json``, the files (relative to the
            folder) whose presence says the folder is this engine's.
        volumetric: True when one request segments the whole volume in 3D (VoxTell); the
            mask then comes back slice by slice like a propagation's.
    """

    key: str
    title: str
    model_types: tuple[str, ...]
    module: str
    precisions: tuple[str, ...] = ("fp32", "bf16")
    four_bit: bool = False
    video: bool = False
    prompts: tuple[str, ...] = ("box",)
    folder_files: tuple[str, ...] = ()
    volumetric: bool = False


_ENGINES = (
    SegEngine("sam", "SAM / MedSAM", ("sam",), "sam"),
    SegEngine("sam2", "SAM2 / MedSAM2 (image)", ("sam2",), "sam2"),
    # SAM2.1 checkpoints converted for transformers say "sam2_video"; the same weights
    # segment one slice (a one-frame session) and track over slices.
    SegEngine(
        "sam2_video", "SAM2 / MedSAM2 (slices as video)", ("sam2_video",), "sam2_video", video=True
    ),
    # SAM3 finds every instance of a concept named in text ("liver", "kidney cyst").
    SegEngine("sam3", "SAM3 (text prompts)", ("sam3",), "sam3", prompts=("text",)),
    # VoxTell (DKFZ) turns free text into a 3D mask; its folders are nnU-Net's, with no
    # config.json. fp32 weights: on CUDA VoxTell runs its own mixed precision.
    SegEngine(
        "voxtell",
        "VoxTell (text → 3D)",
        ("voxtell",),
        "voxtell",
        precisions=("fp32",),
        prompts=("text",),
        folder_files=("plans.json", "fold_0/checkpoint_final.pth"),
        volumetric=True,
    ),
)
_BY_MODEL_TYPE = {t: e for e in _ENGINES for t in e.model_types}


def all_engines() -> tuple[SegEngine, ...]:
    return _ENGINES


def model_types() -> tuple[str, ...]:
    return tuple(_BY_MODEL_TYPE)


def for_model_type(model_type: str) -> SegEngine | None:
    """The engine that opens checkpoints of ``model_type``, or None."""
    return _BY_MODEL_TYPE.get(str(model_type))


def for_folder(folder: str | Path) -> SegEngine | None:
    """The engine a checkpoint folder is for: by the files of a layout without config.json
    (VoxTell), else by ``config.json``'s ``model_type``; None when neither says."""
    folder = Path(folder)
    for engine in _ENGINES:
        if engine.folder_files and all((folder / f).is_file() for f in engine.folder_files):
            return engine
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return for_model_type(config.get("model_type", "")) if isinstance(config, dict) else None
