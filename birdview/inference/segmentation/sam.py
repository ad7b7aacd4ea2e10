"""SAM and MedSAM (`SamModel` + `SamProcessor`): a box on one slice gives a mask.

MedSAM is SAM ViT-B fine-tuned on medical images; its transformers conversion
(``flaviagiammarino/medsam-vit-base``) has ``model_type: "sam"`` and opens here unchanged.
The single-mask output is used (``multimask_output=False``), as MedSAM's own inference does
for box prompts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from birdview.inference.segmentation._base import (
    ModelEngine,
    SliceMask,
    box_list,
    first_mask,
    score_of,
)

__all__ = ["Engine"]


class Engine(ModelEngine):
    """SAM's engine; `sam2.Engine` differs only in `_classes` and `_masks`."""

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
