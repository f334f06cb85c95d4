"""A pre-LayerNorm transformer decoder layer whose heads, FFN channels and whole self can be removed.

`FeedForward` is an `nn.Sequential` (up, GELU, dropout, down) so that state-dict keys stay
`ffn.0.*` / `ffn.3.*` for models saved before it existed; it carries `channel_ids` (original
indices of the intermediate channels present) as `MultiHeadAttention` carries `head_ids`. A layer
is a residual update (x + attention + FFN, normalised before each sublayer), so dropping the whole
layer from its stack is exactly replacing it by the identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from raykd.nn.attention import MultiHeadAttention


class FeedForward(nn.Sequential):
    """Linear(d, width) -> GELU -> Dropout -> Linear(width, d); `width` may become 0."""

    def __init__(self, d_model: int, width: int, dropout: float = 0.0, *, kind: str = "decoder_ffn") -> None:
        super().__init__(nn.Linear(d_model, width), nn.GELU(), nn.Dropout(dropout), nn.Linear(width, d_model))
        self.kind = kind
        self.channel_ids: list[int] = list(range(width))

    @property
    def up(self) -> nn.Linear:
        return self[0]  # type: ignore[return-value]

    @property
    def down(self) -> nn.Linear:
        return self[3]  # type: ignore[return-value]


@dataclass(frozen=True)
class LayerCache:
    """One decoder layer's keys and values (B, heads, L, head_dim): self-attention's for every
    token decoded so far, cross-attention's of the encoder memory (computed once)."""

    self_keys: torch.Tensor
    self_values: torch.Tensor
    cross_keys: torch.Tensor
    cross_values: torch.Tensor

    def select(self, index: torch.Tensor) -> "LayerCache":
        return LayerCache(*(t[index] for t in (self.self_keys, self.self_values, self.cross_keys, self.cross_values)))


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention to a memory, FFN; each pre-normalised and residual."""

    def __init__(self, d_model: int, num_heads: int, ffn_width: int, dropout: float = 0.0) -> None:
        super().__init__()
        d = d_model
        self.self_attn = MultiHeadAttention(d, num_heads, kind="decoder_self", dropout=dropout)
        self.cross_attn = MultiHeadAttention(d, num_heads, kind="decoder_cross", dropout=dropout)
        self.norm_self, self.norm_cross, self.norm_ffn = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.ffn = FeedForward(d, ffn_width, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor) -> torch.Tensor:
        h, _ = self.self_attn(self.norm_self(x), causal=True)
        x = x + self.drop(h)
        h, _ = self.cross_attn(self.norm_cross(x), memory, key_padding_mask=memory_mask)
        x = x + self.drop(h)
        return x + self.drop(self.ffn(self.norm_ffn(x)))

    def start_cache(self, memory: torch.Tensor) -> LayerCache:
        """The cache before the first decoding step: cross-attention keys/values of `memory`."""
        # no tokens yet: empty keys/values (of the decoder's width, which the memory's need not be)
        keys, values = self.self_attn.project_kv(memory.new_zeros(memory.shape[0], 0, self.self_attn.k.in_features))
        cross_keys, cross_values = self.cross_attn.project_kv(memory)
        return LayerCache(keys, values, cross_keys, cross_values)

    def step(self, x: torch.Tensor, cache: LayerCache, memory_mask: torch.Tensor) -> tuple[torch.Tensor, LayerCache]:
        """One decoding step (x: B, 1, d) with cached keys and values; inference only."""
        h = self.norm_self(x)
        k, v = self.self_attn.project_kv(h)
        k, v = torch.cat([cache.self_keys, k], dim=2), torch.cat([cache.self_values, v], dim=2)
        x = x + self.self_attn.attend(h, k, v)
        x = x + self.cross_attn.attend(self.norm_cross(x), cache.cross_keys, cache.cross_values,
                                       key_padding_mask=memory_mask)
        return x + self.ffn(self.norm_ffn(x)), LayerCache(k, v, cache.cross_keys, cache.cross_values)
