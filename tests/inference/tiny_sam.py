"""Tiny, randomly initialised SAM and SAM2 checkpoints, built from configs on this machine.

No hub download exists here, so the segmentation tests and benchmarks build their models:
a few hundred thousand to a million parameters, images of ``size`` pixels (256, not SAM's
1024, so the CPU runs them in tens of milliseconds), written with ``save_pretrained`` beside
their processors, so they open like real checkpoints. The same seed gives the same weights.

Two constraints of transformers 5.24's SAM2 video code shape the sizes: the memory
encoder's output is fixed at 64 channels (a cross-attention's key size is hard-coded), and
object pointers are split into 64-wide tokens only when the model is wider than 64, so the
mask decoder is 128 wide.
"""

from __future__ import annotations

import os
from pathlib import Path

BOX_KINDS = ("sam", "sam2", "sam2_video")
KINDS = (*BOX_KINDS, "sam3")  # SAM3 takes text


def build_tiny_sam(
    kind: str, out_dir: str | os.PathLike, *, seed: int = 0, size: int = 256
) -> Path:
    """Write a tiny checkpoint of ``kind`` (one of `KINDS`) to ``out_dir``."""
    import torch

    if kind not in KINDS:
        raise ValueError(f"Unable to build a tiny {kind!r}; choose one of {KINDS}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    if kind == "sam3":
        model, processor = _sam3(out, size - size % 14)  # whole 14-pixel patches
    else:
        model, processor = _sam(size) if kind == "sam" else _sam2(kind, size)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def _sam(size: int):
    from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor

    config = SamConfig(
        vision_config=dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=size,
            patch_size=16,
            output_channels=32,
            window_size=4,
            global_attn_indexes=[1],
            mlp_dim=64,
            num_pos_feats=16,
            initializer_range=0.02,  # SAM's default (1e-10) leaves the encoder blind to the image
        ),
        prompt_encoder_config=dict(
            hidden_size=32, image_size=size, patch_size=16, mask_input_channels=8
        ),
        mask_decoder_config=dict(
            hidden_size=32,
            mlp_dim=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            iou_head_hidden_dim=32,
        ),
    )
    quarter = size // 4
    images = SamImageProcessor(
        size={"longest_edge": size},
        pad_size={"height": size, "width": size},
        mask_size={"longest_edge": quarter},
        mask_pad_size={"height": quarter, "width": quarter},
    )
    return SamModel(config).eval(), SamProcessor(image_processor=images)


def _sam2(kind: str, size: int):
    from transformers import (
        Sam2Config,
        Sam2ImageProcessor,
        Sam2Model,
        Sam2Processor,
        Sam2VideoConfig,
        Sam2VideoModel,
        Sam2VideoProcessor,
        Sam2VideoVideoProcessor,
    )

    vision = dict(
        backbone_config=dict(
            model_type="sam2_hiera_det_model",
            hidden_size=16,
            num_attention_heads=1,
            blocks_per_stage=[1, 2, 2, 1],
            embed_dim_per_stage=[16, 32, 64, 128],
            num_attention_heads_per_stage=[1, 1, 1, 1],
            window_size_per_stage=[8, 4, 8, 8],
            global_attention_blocks=[2, 4],  # not a stage's first (pooling) block
            image_size=[size, size],
            window_positional_embedding_background_size=[4, 4],
        ),
        backbone_channel_list=[128, 64, 32, 16],
        backbone_feature_sizes=[[size // 4] * 2, [size // 8] * 2, [size // 16] * 2],
        fpn_hidden_size=128,
    )
    heads = dict(
        vision_config=vision,
        prompt_encoder_config=dict(hidden_size=128, image_size=size, patch_size=16),
        mask_decoder_config=dict(
            hidden_size=128, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32
        ),
    )
    images = Sam2ImageProcessor(
        size={"height": size, "width": size}, mask_size={"height": size // 4, "width": size // 4}
    )
    if kind == "sam2":
        return Sam2Model(Sam2Config(**heads)).eval(), Sam2Processor(image_processor=images)
    config = Sam2VideoConfig(
        **heads,
        image_size=size,
        memory_attention_hidden_size=128,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=64,
        memory_attention_rope_feat_sizes=[size // 16, size // 16],
        memory_encoder_hidden_size=128,
        memory_encoder_output_channels=64,
        mask_downsampler_embed_dim=128,
        memory_fuser_embed_dim=128,
        memory_fuser_intermediate_dim=64,
    )
    video = Sam2VideoVideoProcessor(size={"height": size, "width": size})
    processor = Sam2VideoProcessor(image_processor=images, video_processor=video, target_size=size)
    return Sam2VideoModel(config).eval(), processor


def build_full_size_sam(kind: str, out_dir: str | os.PathLike, *, seed: int = 0) -> Path:
    """A random model at a released checkpoint's size, in bf16, for memory and speed checks
    on a GPU: "sam" is SAM ViT-B (MedSAM's size, 94 M parameters) and "sam2_video" SAM2.1
    Hiera-T (MedSAM2's size): transformers' default configs."""
    import torch
    from transformers import (
        Sam2ImageProcessor,
        Sam2VideoConfig,
        Sam2VideoModel,
        Sam2VideoProcessor,
        Sam2VideoVideoProcessor,
        SamConfig,
        SamImageProcessor,
        SamModel,
        SamProcessor,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    if kind == "sam":
        model, processor = SamModel(SamConfig()), SamProcessor(image_processor=SamImageProcessor())
    elif kind == "sam2_video":
        model = Sam2VideoModel(Sam2VideoConfig())
        processor = Sam2VideoProcessor(
            image_processor=Sam2ImageProcessor(), video_processor=Sam2VideoVideoProcessor()
        )
    else:
        raise ValueError(f"Unable to build a full-size {kind!r}; choose 'sam' or 'sam2_video'")
    model.to(torch.bfloat16).save_pretrained(out)
    processor.save_pretrained(out)
    return out


def _sam3(out: Path, size: int):
    """SAM3 with a character-level CLIP tokenizer (every byte a token, no merges): its real
    BPE vocabulary cannot be downloaded here, and the model only needs ids."""
    import json

    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer, Sam3Config, Sam3ImageProcessor, Sam3Model, Sam3Processor

    chars = sorted(ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    (out / "vocab.json").write_text(json.dumps(vocab))
    (out / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(out / "vocab.json"), str(out / "merges.txt"))
    grid = size // 14
    end = vocab["<|endoftext|>"]
    config = Sam3Config(
        vision_config=dict(
            backbone_config=dict(
                model_type="sam3_vit_model",
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=2,
                image_size=size,
                patch_size=14,
                window_size=8,
                global_attn_indexes=[1],
                pretrain_image_size=size,
            ),
            fpn_hidden_size=32,
            backbone_feature_sizes=[[grid * 4] * 2, [grid * 2] * 2, [grid] * 2],
        ),
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=32,
            projection_dim=32,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=end,
            pad_token_id=end,
        ),
        geometry_encoder_config=dict(
            hidden_size=32, num_layers=1, num_attention_heads=2, intermediate_size=64
        ),
        detr_encoder_config=dict(
            hidden_size=32, num_layers=1, num_attention_heads=2, intermediate_size=64
        ),
        detr_decoder_config=dict(
            hidden_size=32, num_layers=1, num_queries=8, num_attention_heads=2, intermediate_size=64
        ),
        mask_decoder_config=dict(hidden_size=32, num_attention_heads=2),
    )
    images = Sam3ImageProcessor(
        size={"height": size, "width": size}, mask_size={"height": grid * 4, "width": grid * 4}
    )
    return Sam3Model(config).eval(), Sam3Processor(image_processor=images, tokenizer=tokenizer)
