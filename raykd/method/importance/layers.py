"""Layer importance: Block Influence (ShortGPT, Men et al. 2024) and a random baseline.

BI of a layer = 1 - cos(input, output) of its hidden states, averaged over the real positions of
the calibration set: a layer that barely turns the residual stream changes little when it goes.
The lowest BI is dropped first. Unlike heads and FFN scores it needs no normalisation: layers are
ranked within their stack (encoder layers among themselves, decoder layers among themselves).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

BlockKey = tuple[str, int]  # (stack kind, position in the stack now)


@dataclass
class LayerStats:
    layer_id: int  # original id
    influence: float


def block_influence_sums(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> tuple[float, int]:
    """(sum over real positions of 1 - cos(x, y), number of real positions); x, y (B, L, d)."""
    if x.shape != y.shape or x.shape[:2] != mask.shape:
        raise ValueError(f"layer input {tuple(x.shape)}, output {tuple(y.shape)} and mask {tuple(mask.shape)} do not line up")
    cos = torch.nn.functional.cosine_similarity(x.detach().float(), y.detach().float(), dim=-1)
    rows = mask.bool().to(cos.device)
    return float(((1 - cos) * rows).sum()), int(rows.sum())


def layer_scores(stats: dict[BlockKey, LayerStats]) -> dict[BlockKey, float]:
    return {k: s.influence for k, s in stats.items()}


def layer_random_scores(stats: dict[BlockKey, LayerStats], seed: int) -> dict[BlockKey, float]:
    g = torch.Generator().manual_seed(seed)
    return {k: float(torch.rand(1, generator=g)) for k in sorted(stats)}
