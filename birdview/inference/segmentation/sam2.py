"""SAM2 / MedSAM2 for single images (`Sam2Model` + `Sam2Processor`): a box on one slice
gives a mask; propagation prompts each next slice with the box around the last mask.

Prompting is SAM's (`segmentation.sam`); only the classes and the mask post-processing
differ (SAM2's processor scales masks back from the original size alone)."""

from __future__ import annotations

from typing import Any

from birdview.inference.segmentation import sam

__all__ = ["Engine"]


class Engine(sam.Engine):
    @staticmethod
    def _classes() -> tuple[Any, Any]:
        from transformers import Sam2Model, Sam2Processor

        return Sam2Model, Sam2Processor

    def _masks(self, out: Any, inputs: Any) -> Any:
        return self.processor.post_process_masks(
            out.pred_masks.float().cpu(), inputs["original_sizes"]
        )
