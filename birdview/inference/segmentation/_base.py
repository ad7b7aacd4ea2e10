"""What the engine modules share (torch side): loading, the result of one slice, dtypes,
boxes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_DTYPES = {"fp32": "float32", "bf16": "bfloat16"}


@dataclass(frozen=True)
class SliceMask:
    """One slice's mask at the image's own size, and the model's confidence in it (SAM's
    predicted IoU, SAM2's object score as a probability; None when it gives none)."""

    mask: np.ndarray
    score: float | None


class ModelEngine:
    """An engine whose model and processor (`_classes`) load from a local checkpoint folder
    onto ``device`` in ``dtype``."""

    video = False

    def __init__(self, folder: Path, device: str, dtype: Any) -> None:
        model_class, processor_class = self._classes()
        self.processor = processor_class.from_pretrained(folder, local_files_only=True)
        self.model = model_class.from_pretrained(
            folder, local_files_only=True, use_safetensors=True, dtype=dtype
        )
        self.model.to(device).eval()
        self.device, self.dtype = device, dtype

    @staticmethod
    def _classes() -> tuple[Any, Any]:
        """The transformers (model, processor) classes, imported only when loading."""
        raise NotImplementedError


def torch_dtype(precision: str) -> Any:
    import torch

    return getattr(torch, _DTYPES[precision])


def box_list(box: tuple[float, float, float, float]) -> list[float]:
    return [float(v) for v in box]


def first_mask(masks: Any) -> np.ndarray:
    """The first mask of a post-processed batch, as a (rows, cols) bool array."""
    array = masks[0] if isinstance(masks, (list, tuple)) else masks
    array = np.asarray(
        array.detach().to("cpu").float().numpy() if hasattr(array, "detach") else array
    )
    while array.ndim > 2:
        array = array[0]
    return array > 0.5


def score_of(tensor: Any, *, logits: bool = False) -> float | None:
    if tensor is None:
        return None
    value = float(tensor.detach().float().reshape(-1)[0])
    if logits:
        value = float(1.0 / (1.0 + np.exp(-value)))
    return value
