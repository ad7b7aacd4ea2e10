"""SAM3 (`Sam3Model` + `Sam3Processor`): text names a concept ("liver", "kidney cyst") and the
model segments every instance of it on a slice; BirdView takes the union of the instances
scoring at least ``min_score`` as the slice's mask.

Propagation prompts every slice with the same text (SAM3's own video tracker is
`Sam3VideoModel`, not wired here).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from birdview.inference.segmentation._base import ModelEngine, SliceMask

__all__ = ["Engine"]


class Engine(ModelEngine):
    video = False

    @staticmethod
    def _classes() -> tuple[Any, Any]:
        from transformers import Sam3Model, Sam3Processor

        return Sam3Model, Sam3Processor

    def segment_text(self, image_rgb: np.ndarray, text: str, min_score: float) -> SliceMask:
        import torch

        inputs = self.processor(images=image_rgb, text=text, return_tensors="pt")
        sizes = inputs["original_sizes"].tolist()
        inputs = inputs.to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        with torch.inference_mode():
            out = self.model(**inputs)
        found = self.processor.post_process_instance_segmentation(
            out, threshold=float(min_score), mask_threshold=0.5, target_sizes=sizes
        )[0]
        masks = np.asarray(found["masks"].detach().cpu().numpy(), dtype=bool)
        scores = found["scores"].detach().float().cpu().numpy()
        union = masks.any(axis=0) if masks.size else np.zeros(image_rgb.shape[:2], bool)
        return SliceMask(union, float(scores.max()) if scores.size else None)
