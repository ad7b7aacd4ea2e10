"""SAM2 / MedSAM2 for single images (`Sam2Model` + `Sam2Processor`): a box on one slice
gives a mask; propagation prompts each next slice with the box around the last mask."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from birdview.inference.segmentation._base import SliceMask, box_list, first_mask, score_of

__all__ = ["Engine"]


class Engine:
    video = False

    def __init__(self, folder: Path, device: str, dtype: Any) -> None:
        from transformers import Sam2Model, Sam2Processor

        self.processor = Sam2Processor.from_pretrained(folder, local_files_only=True)
        self.model = Sam2Model.from_pretrained(
            folder, local_files_only=True, use_safetensors=True, dtype=dtype
        )
        self.model.to(device).eval()
        self.device, self.dtype = device, dtype

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
        masks = self.processor.post_process_masks(
            out.pred_masks.float().cpu(), inputs["original_sizes"]
        )
        return SliceMask(first_mask(masks), score_of(out.iou_scores))
