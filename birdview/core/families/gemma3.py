"""Gemma 3 (MedGemma 1.5 4B, MedGemma 4B, MedGemma 27B multimodal, Gemma 3 4B/12B/27B).

Boxes, as MedGemma's localization notebooks show them: a fenced JSON list of
``{"box_2d": [y0, x0, y1, x1], "label": ...}``, y first, on the 0–1000 grid of the image
padded to a centred square (the notebooks pad before the processor, so boxes map back
through the padding, not through the raw aspect ratio); often after free reasoning and a
``Final Answer:`` line. The SigLIP encoder sees a fixed 896 × 896 image (256 image tokens).

MedGemma 1.5's thinking mode wraps the thought in ``<unused94>thought … <unused95>``: ordinary
vocabulary tokens that ``skip_special_tokens`` keeps, so they are declared as thought markers.
"""

from __future__ import annotations

from birdview.core.box_codecs import BoxCodec
from birdview.core.families._family import (
    ChatMarkup,
    Family,
    Generation,
    ImageRule,
    Packing,
)

FAMILY = Family(
    key="gemma3",
    title="Gemma 3 (MedGemma)",
    model_types=("gemma3",),
    codec=BoxCodec(
        "gemma3", "json", relative=True, json_key="box_2d", order="yx", pad_to_square=True
    ),
    chat=ChatMarkup(
        assistant_header="<start_of_turn>model\n",
        end_of_turn="<end_of_turn>",
        stop_tokens=("<end_of_turn>", "<eos>"),
        thoughts=(("<unused94>", "<unused95>"),),
    ),
    image=ImageRule(pad_to_square=True, resize="fixed"),
    unquantised=("model.vision_tower", "model.multi_modal_projector", "lm_head"),
    vision_parts=("vision_tower.",),
    projector_parts=("multi_modal_projector.",),
    packing=Packing(
        refusal=(
            "Gemma 3 attends bidirectionally within each image through token_type_ids, "
            "which packed rows do not carry; set data.pack=false"
        )
    ),
    # A JSON list of boxes with labels, often after reasoning, outgrows BiRD's 80 tokens.
    generation=Generation(max_new_tokens=512, reasoning_max_new_tokens=2048),
    tiny=None,
    pixel_keys=("pixel_values",),
)
