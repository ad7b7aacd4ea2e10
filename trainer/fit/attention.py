"""``sdpa_varlen``: attention for packed sequences where flash-attention is not available (the
CPU, or a GPU without the package).

transformers recognises a packed row by its text positions restarting (``position_ids`` of
shape (4, rows, length) for multimodal RoPE, no attention mask; see `trainer.fit.collate`). flash-
attention then attends within each conversation only; plain ``sdpa`` builds a block-diagonal
length × length mask and computes the whole square, so packing many conversations into one row
costs more than padding saves. This implementation runs PyTorch's causal
``scaled_dot_product_attention`` on each conversation of a packed row in turn (cost: the sum of
the squares of their lengths), and falls back to transformers' ``sdpa`` for everything else
(padded batches with a mask, generation with a cache, the vision tower). It is registered under
its name with transformers' attention and mask interfaces when a recipe asks for it
(``model.attention: sdpa_varlen``); the name is not saved with the checkpoint.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["NAME", "register", "sdpa_varlen_attention"]

NAME = "sdpa_varlen"


def register() -> None:
    """Make ``attn_implementation="sdpa_varlen"`` known to transformers (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(NAME, sdpa_varlen_attention)
    AttentionMaskInterface.register(NAME, _mask)


def sdpa_varlen_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    position_ids: torch.Tensor | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention of (batch, heads, length, head_dim) tensors; returns (batch, length, heads,
    head_dim) as transformers' attention functions do."""
    bounds = _segments(query, key, attention_mask, is_causal, position_ids)
    if bounds is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module, query, key, value, attention_mask,
            dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs,
        )  # fmt: skip
    gqa = query.shape[1] != key.shape[1]
    rows = []
    for row, segments in enumerate(bounds):
        pieces = [
            F.scaled_dot_product_attention(
                query[row : row + 1, :, start:stop],
                key[row : row + 1, :, start:stop],
                value[row : row + 1, :, start:stop],
                dropout_p=dropout if module.training else 0.0,
                is_causal=True,
                scale=scaling,
                enable_gqa=gqa,
            )
            for start, stop in segments
        ]
        rows.append(torch.cat(pieces, dim=2))
    return torch.cat(rows).transpose(1, 2).contiguous(), None


def _segments(
    query: torch.Tensor,
    key: torch.Tensor,
    attention_mask: torch.Tensor | None,
    is_causal: bool | None,
    position_ids: torch.Tensor | None,
) -> list[list[tuple[int, int]]] | None:
    """[(start, stop)] of the conversations of each row of a packed causal batch; None when
    the batch is not one (a mask, a cache, no text positions, non-causal attention)."""
    if attention_mask is not None or is_causal is False or position_ids is None:
        return None
    length = query.shape[2]
    if position_ids.ndim != 2 or position_ids.shape[-1] != length or key.shape[2] != length:
        return None
    positions = position_ids.expand(query.shape[0], -1)
    first = positions[:, :1] - 1
    starts = torch.diff(positions, prepend=first, dim=-1) != 1
    bounds = []
    for row in starts:
        edges = [*row.nonzero().flatten().tolist(), length]
        if edges[0] != 0:
            edges.insert(0, 0)
        bounds.append(list(zip(edges[:-1], edges[1:], strict=True)))
    return bounds


def _mask(*args: Any, attention_mask: torch.Tensor | None = None, **kwargs: Any) -> Any:
    """No mask without padding (packed rows are split by position instead); otherwise the
    mask ``sdpa`` would get."""
    if attention_mask is None:
        return None
    from transformers.masking_utils import sdpa_mask

    return sdpa_mask(*args, attention_mask=attention_mask, **kwargs)
