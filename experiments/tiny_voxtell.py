"""A tiny, randomly initialised VoxTell checkpoint folder, built on this machine for tests.

No hub download exists here, so the real ``mrokuss/VoxTell`` weights and the
Qwen3-Embedding-4B text encoder cannot be had. This writes a folder in the layout VoxTell's
own `VoxTellPredictor` opens, so BirdView's adapter runs VoxTell's real code path on it:

    <out>/plans.json                    nnU-Net plans: the encoder's stages, the patch size
    <out>/fold_0/checkpoint_final.pth   {"network_weights": state dict} for `VoxTellModel`
    <out>/text_encoder/                 a Qwen3 text-embedding model and its tokenizer

What VoxTell fixes and what is small here:

- `VoxTellPredictor` builds `VoxTellModel` with its prompt decoder's sizes hard-coded (query
  width 2048, 32 fusion heads, text embeddings 2560 wide, 6 transformer layers) and the
  model fixes the decoder's channels (32 … 320) and a 12 × 12 × 12 memory for the prompt
  decoder, so every VoxTell network has about 340 M parameters. Only the image side is
  small: 1 × 1 × 1 kernels, one block a stage, and strides that bring a 24 × 192 × 192
  patch (z, y, x) to 12³ at the fifth stage.
- The weights are views into one buffer of random numbers (std 0.02, as transformers
  initialises), so the checkpoint is about 50 MB instead of 1.4 GB; loading copies each
  into the network's own tensors, as for real weights.
- The text encoder is a one-layer Qwen3 (hidden size 2560, as VoxTell expects from
  Qwen3-Embedding-4B) with a byte-level BPE tokenizer trained here on anatomy words.

The same seed gives the same folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

PATCH_ZYX = (24, 192, 192)
_STRIDES = ([1, 1, 1], [1, 2, 2], [2, 2, 2], [1, 2, 2], [1, 2, 2], [1, 1, 1])
_FEATURES = [32, 64, 128, 256, 320, 320]  # what VoxTellModel's decoder stages require
_WORDS = (
    "liver spleen pancreas stomach gallbladder left right kidney adrenal gland aorta "
    "inferior vena cava portal vein lung upper lower lobe heart vertebra rib femur hip "
    "urinary bladder prostate colon small bowel duodenum esophagus trachea brain tumor "
    "lesion cyst nodule metastasis the of and with in a an Instruct Query Given anatomical "
    "term query retrieve precise entity location it represents"
)


def build_tiny_voxtell(out_dir: str | os.PathLike, *, seed: int = 0) -> Path:
    """Write the tiny VoxTell folder to ``out_dir`` and return it."""
    import torch

    out = Path(out_dir)
    (out / "fold_0").mkdir(parents=True, exist_ok=True)
    plans = _plans()
    (out / "plans.json").write_text(json.dumps(plans, indent=1), encoding="utf-8")
    generator = torch.Generator().manual_seed(seed)
    weights = _random_weights(plans, generator)
    torch.save({"network_weights": weights}, out / "fold_0" / "checkpoint_final.pth")
    _text_encoder(out / "text_encoder", seed)
    return out


def _plans() -> dict:
    n = len(_FEATURES)
    arch = {
        "n_stages": n,
        "features_per_stage": _FEATURES,
        "conv_op": "torch.nn.modules.conv.Conv3d",
        "kernel_sizes": [[1, 1, 1]] * n,
        "strides": [list(s) for s in _STRIDES],
        "n_blocks_per_stage": [1] * n,
        "n_conv_per_stage_decoder": [1] * (n - 1),
        "conv_bias": True,
        "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
        "norm_op_kwargs": {"eps": 1e-05, "affine": True},
        "dropout_op": None,
        "dropout_op_kwargs": None,
        "nonlin": "torch.nn.LeakyReLU",
        "nonlin_kwargs": {"inplace": True},
    }
    return {
        "plans_name": "tiny VoxTell (random weights, for tests; not a trained model)",
        "configurations": {
            "3d_fullres": {
                "patch_size": list(PATCH_ZYX),
                "architecture": {
                    "network_class_name": "voxtell.model.voxtell_model.VoxTellModel",
                    "arch_kwargs": arch,
                    "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
                },
            }
        },
    }


def _network_on_meta(plans: dict):
    """`VoxTellModel` as `VoxTellPredictor` builds it, on the meta device (shapes only)."""
    import pydoc

    import torch
    from voxtell.model.voxtell_model import VoxTellModel

    architecture = plans["configurations"]["3d_fullres"]["architecture"]
    kwargs = dict(architecture["arch_kwargs"])
    for key in architecture["_kw_requires_import"]:
        if kwargs[key] is not None:
            kwargs[key] = pydoc.locate(kwargs[key])
    with torch.device("meta"):
        return VoxTellModel(
            input_channels=1,
            **kwargs,
            decoder_layer=4,
            text_embedding_dim=2560,
            num_maskformer_stages=5,
            num_heads=32,
            query_dim=2048,
            project_to_decoder_hidden_dim=2048,
            deep_supervision=False,
        )


def _random_weights(plans: dict, generator) -> dict:
    """A state dict whose tensors are views into one random buffer (one storage on disk);
    the positional encoding is VoxTell's own, computed as `VoxTellModel` does."""
    import torch
    from einops import rearrange
    from positional_encodings.torch_encodings import PositionalEncoding3D

    shapes = {k: v.shape for k, v in _network_on_meta(plans).state_dict().items()}
    largest = max(s.numel() for s in shapes.values())
    buffer = torch.randn(largest + 4096, generator=generator, dtype=torch.float32) * 0.02
    buffer = buffer.half()
    weights = {}
    for key, shape in shapes.items():
        if key == "pos_embed":
            pos = PositionalEncoding3D(shape[-1])(torch.zeros(1, 12, 12, 12, shape[-1]))
            weights[key] = rearrange(pos, "b h w d c -> (h w d) b c").contiguous()
            continue
        count = shape.numel()
        offset = int(torch.randint(0, buffer.numel() - count + 1, (1,), generator=generator))
        weights[key] = buffer[offset : offset + count].view(shape)
    return weights


def _text_encoder(out: Path, seed: int) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3Model

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([_WORDS] * 8, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        padding_side="left",
        model_max_length=8192,
    )
    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=2560,  # Qwen3-Embedding-4B's width: VoxTell's text projection expects it
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    Qwen3Model(config).eval().save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


if __name__ == "__main__":
    import sys

    print(build_tiny_voxtell(sys.argv[1] if len(sys.argv) > 1 else "tiny_voxtell"))
