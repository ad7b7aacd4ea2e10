"""Opening a local segmentation checkpoint (Hugging Face layout) offline, safetensors only.

The folder checks (exists, config.json, safetensors present and whole, no pickled weights)
are the language-model loader's own; the engine comes from `engines` by
``config.model_type``, or, for VoxTell's nnU-Net folder (no config.json), by its files; the
VoxTell engine checks that folder itself (`voxtell.check_folder`). ``precision="auto"`` is
bf16 on CUDA (where the engine allows it) and fp32 on the CPU.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from birdview.inference._checkpoint_files import checkpoint_sha256, hashed_files
from birdview.inference.errors import ModelLoadError
from birdview.inference.loader import _read_config, _resolve_device
from birdview.inference.offline import go_offline
from birdview.inference.segmentation import engines
from birdview.inference.segmentation._base import torch_dtype

__all__ = ["LoadedSegmenter", "load_segmenter"]

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "nf4", "int8")


@dataclass
class LoadedSegmenter:
    engine: Any
    key: str
    model_type: str
    precision: str
    device: str
    notices: list[str] = field(default_factory=list)
    seconds: float = 0.0
    checkpoint_sha256: str = ""


def load_segmenter(
    model_dir: str | os.PathLike, *, precision: str = "auto", device: str = "auto"
) -> LoadedSegmenter:
    """Load the segmentation checkpoint in ``model_dir``.

    Raises:
        ModelLoadError: the folder is missing, damaged or holds pickled weights only, its
            ``model_type`` is not a segmentation engine's, the precision is not one the
            engine allows, the device is missing, or memory ran out.
    """
    started = time.perf_counter()
    go_offline()
    folder = Path(model_dir)
    if precision not in PRECISIONS:
        raise ModelLoadError(
            f"Unable to load the segmenter at '{folder}' as precision {precision!r} is not one "
            f"of {list(PRECISIONS)}"
        )
    engine, model_type = _recognise(folder)
    notices: list[str] = []
    device = _resolve_device(folder, device, notices)
    if precision == "auto":
        precision = "bf16" if device == "cuda" and "bf16" in engine.precisions else "fp32"
    if precision not in engine.precisions:
        raise ModelLoadError(
            f"Unable to load the segmenter at '{folder}' in {precision} as {engine.title} "
            f"loads in {' or '.join(engine.precisions)} only"
        )
    module = importlib.import_module(f"{__name__.rsplit('.', 1)[0]}.{engine.module}")
    try:
        wrapped = module.Engine(folder, device, torch_dtype(precision))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        if "out of memory" in str(exc).lower():
            raise
        raise ModelLoadError(
            f"Unable to load the segmenter at '{folder}' as {engine.title} could not read it "
            f"({type(exc).__name__}: {str(exc)[:200]})"
        ) from exc
    files = getattr(module, "hashed_files", hashed_files)  # VoxTell has its own files
    return LoadedSegmenter(
        engine=wrapped,
        key=engine.key,
        model_type=model_type,
        precision=precision,
        device=device,
        notices=notices,
        seconds=time.perf_counter() - started,
        checkpoint_sha256=checkpoint_sha256(files(folder)),
    )


def _recognise(folder: Path) -> tuple[engines.SegEngine, str]:
    """The engine and model type of ``folder``: a layout without config.json (VoxTell's
    nnU-Net folder) by its files, else a Hugging Face checkpoint by ``config.model_type``."""
    if folder.is_dir():
        for engine in engines.all_engines():
            found = [f for f in engine.folder_files if (folder / f).is_file()]
            if found and len(found) == len(engine.folder_files):
                return engine, engine.model_types[0]
            if found and not (folder / "config.json").is_file():
                missing = [f for f in engine.folder_files if f not in found]
                raise ModelLoadError(
                    f"Unable to load the segmenter at '{folder}' as it looks like a "
                    f"{engine.title} folder but has no {', '.join(missing)}; choose the "
                    "folder that holds them all"
                )
    config = _read_config(folder)
    model_type = str(config.get("model_type", ""))
    engine = engines.for_model_type(model_type)
    if engine is None:
        raise ModelLoadError(
            f"Unable to load the segmenter at '{folder}' as its model_type {model_type!r} is "
            f"not a segmentation model; known: {', '.join(engines.model_types())}"
        )
    return engine, model_type
