"""SAM and MedSAM (`SamModel` + `SamProcessor`): a box on one slice gives a mask.

MedSAM is SAM ViT-B fine-tuned on medical images; its transformers conversion
(``flaviagiammarino/medsam-vit-base``) has ``model_type: "sam"`` and opens here unchanged.
The single-mask output is used (``multimask_output=False``), as MedSAM's own inference does
for box prompts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from birdview.inference.segmentation._base import SliceMask, box_list, first_mask, score_of

__all__ = ["Engine"]


class Engine:
    """SAM's engine; `sam2.Engine` differs only in `_classes` and `_masks`."""

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
        from transformers import SamModel, SamProcessor

        return SamModel, SamProcessor

    def segment(self, image_rgb: np.ndarray, box: tuple[float, float, float, float]) -> SliceMask:
        import torch

        inputs = self.processor(
            images=image_rgb, input_boxes=[[box_list(box)]], return_tensors="pt"
        )
        with torch.inference_mode():
            out = self.model(
                pixel_values=inputs["pixel_values"].to(self.device, self.dtype),
                input_boxes=inputs["input_boxes"].to(self.device, self.dtype),
                multimask_output=False,
            )
        return SliceMask(first_mask(self._masks(out, inputs)), score_of(out.iou_scores))

    def _masks(self, out: Any, inputs: Any) -> Any:
        """The predicted masks at the original image's size."""
        return self.processor.image_processor.post_process_masks(
            out.pred_masks.float().cpu(), inputs["original_sizes"], inputs["reshaped_input_sizes"]
        )
