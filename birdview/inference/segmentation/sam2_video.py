"""SAM2 / MedSAM2 over slices (`Sam2VideoModel` + `Sam2VideoProcessor`): the slices of a
volume are the frames of a video. A box (or a mask) on one slice starts a track that the
model's memory carries forward and then backward through the range; one slice alone is a
one-frame session.

MedSAM2 (bowang-lab) applies SAM2.1 this way to CT and MR volumes; its released weights are
SAM2.1 Hiera-T ``.pt`` files that must be converted to the transformers layout first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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

_OBJECT = 1  # one object per track


class Engine(ModelEngine):
    video = True

    @staticmethod
    def _classes() -> tuple[Any, Any]:
        from transformers import Sam2VideoModel, Sam2VideoProcessor

        return Sam2VideoModel, Sam2VideoProcessor

    def segment(self, image_rgb: np.ndarray, box: tuple[float, float, float, float]) -> SliceMask:
        found: list[SliceMask] = []
        self.track([image_rgb], 0, box=box, mask=None, emit=lambda i, m: found.append(m))
        return found[0]

    def track(
        self,
        frames: Sequence[np.ndarray],
        start: int,
        *,
        box: tuple[float, float, float, float] | None,
        mask: np.ndarray | None,
        emit: Callable[[int, SliceMask], None],
        cancel: Callable[[], bool] = lambda: False,
    ) -> None:
        """Prompt frame ``start`` with ``box`` or ``mask``; emit (frame, mask) for it, then
        for the frames after it in order, then for those before it, nearest first."""
        import torch

        height, width = frames[0].shape[:2]
        session = self.processor.init_video_session(
            video=list(frames), inference_device=self.device, dtype=self.dtype
        )
        if mask is not None:
            prompt: dict[str, Any] = {"input_masks": np.asarray(mask, dtype=bool)}
        else:
            prompt = {"input_boxes": [[box_list(box)]]}
        self.processor.add_inputs_to_inference_session(
            session, frame_idx=start, obj_ids=_OBJECT, **prompt
        )
        with torch.inference_mode():
            self.model(inference_session=session, frame_idx=start)
            for reverse in (False, True):
                if reverse and start == 0:
                    break
                for out in self.model.propagate_in_video_iterator(
                    session, start_frame_idx=start, reverse=reverse
                ):
                    if reverse and out.frame_idx == start:
                        continue  # already given going forward
                    masks = self.processor.post_process_masks(
                        [out.pred_masks.float().cpu()], original_sizes=[[height, width]]
                    )
                    score = score_of(out.object_score_logits, logits=True)
                    emit(int(out.frame_idx), SliceMask(first_mask(masks), score))
                    if cancel():
                        return
