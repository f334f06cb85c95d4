"""Multi-head attention whose heads can be physically removed.

Why our own module: the decoder's heads are scored and pruned like the encoder's, so every head
must own a contiguous slice of the Q/K/V output rows and of the O input columns, and the layer
must work with any head count, zero included (a block with no heads contributes only O's bias).
`head_ids` remembers which of the original heads are still present, so a pruned student can be
matched head-for-head with its teacher.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention with `num_heads` heads of width `head_dim`.

    `kind` names the attention kind for head scoring ("decoder_self" or "decoder_cross").
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        head_dim: int | None = None,
        *,
        kind: str = "decoder_self",
        dropout: float = 0.0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if num_heads < 0:
            raise ValueError(f"num_heads must be >= 0, got {num_heads}")
        if head_dim is None:
            if num_heads == 0 or d_model % num_heads:
                raise ValueError(f"d_model {d_model} is not divisible by num_heads {num_heads}")
            head_dim = d_model // num_heads
        self.d_model = d_model
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.kind = kind
        self.dropout = dropout
        self.head_ids: list[int] = list(range(num_heads))
        inner = num_heads * head_dim
        self.q = nn.Linear(d_model, inner, bias=bias)
        self.k = nn.Linear(d_model, inner, bias=bias)
        self.v = nn.Linear(d_model, inner, bias=bias)
        self.o = nn.Linear(inner, d_model, bias=bias)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        query: torch.Tensor,
        key_value: torch.Tensor | None = None,
        *,
        key_padding_mask: torch.Tensor | None = None,
        causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from `query` (B, Lq, D) to `key_value` (B, Lk, D; defaults to `query`).

        `key_padding_mask` is (B, Lk), True where a key is real. Returns the output (B, Lq, D)
        and, with `need_weights`, the attention probabilities (B, heads, Lq, Lk).
        """
        kv = query if key_value is None else key_value
        b, lq, _ = query.shape
        lk = kv.shape[1]
        if self.num_heads == 0:
            empty = query.new_zeros(b, lq, 0)
            weights = query.new_zeros(b, 0, lq, lk) if need_weights else None
            return self.o(empty), weights
        q, (k, v) = self._split(self.q(query)), self.project_kv(kv)
        mask = _attention_mask(key_padding_mask, causal, lq, lk, query.device)
        drop = self.dropout if self.training else 0.0
        if need_weights:
            scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)
            if mask is not None:
                scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
            probs = scores.softmax(dim=-1)
            ctx = F.dropout(probs, drop, self.training) @ v
        else:
            probs = None
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        return self._merge(ctx), probs

    def project_kv(self, key_value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values (B, heads, L, head_dim) of `key_value` (B, L, D).

        Cached decoding computes cross-attention's once per problem and appends self-attention's
        one token per step, so a step projects only the new token.
        """
        return self._split(self.k(key_value)), self._split(self.v(key_value))

    def attend(
        self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, *,
        key_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attend from `query` (B, Lq, D) to keys and values from `project_kv` (inference, no
        dropout). There is no causal mask: a decoding step's one query may see every cached key."""
        b, lq, _ = query.shape
        if self.num_heads == 0:
            return self.o(query.new_zeros(b, lq, 0))
        q = self._split(self.q(query))
        mask = _attention_mask(key_padding_mask, False, lq, keys.shape[2], query.device)
        return self._merge(F.scaled_dot_product_attention(q, keys, values, attn_mask=mask))

    def _merge(self, ctx: torch.Tensor) -> torch.Tensor:
        b, _, lq, _ = ctx.shape
        return self.o(ctx.transpose(1, 2).reshape(b, lq, self.num_heads * self.head_dim))


def _attention_mask(
    key_padding_mask: torch.Tensor | None, causal: bool, lq: int, lk: int, device: torch.device
) -> torch.Tensor | None:
    """A boolean mask broadcastable to (B, heads, Lq, Lk), True where attention is allowed."""
    mask = None
    if key_padding_mask is not None:
        mask = key_padding_mask[:, None, None, :].bool()
    if causal:
        tri = torch.ones(lq, lk, dtype=torch.bool, device=device).tril(diagonal=lk - lq)
        mask = tri if mask is None else mask & tri
    return mask
