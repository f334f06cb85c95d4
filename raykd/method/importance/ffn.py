"""FFN channel importance, in the paper's spirit: S = a * norm(w) + (1 - a) * norm(act).

- w, the channel's weight norm: mean |up row| (+ mean |gate row| in a gated MLP) + mean |down
  column| (what the channel reads and writes, as Eq. 1 sums a head's Q, K and V slices);
- act, the activation statistic: mean |activation| of the channel over the real positions of the
  calibration set (Minitron's FFN importance), measured at the input of the down projection;
- Taylor (|activation x gradient|, summed over positions, averaged over examples) and random
  scores are the baselines.

Normalisation is per FFN kind (encoder_ffn, decoder_ffn), as for heads per attention kind; the
lowest scores are pruned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from raykd.method.importance.normalise import Normalisation, normalise
from raykd.structures import FFNBlock
from raykd.structures.keys import BlockPosition


@dataclass
class ChannelStats:
    """One FFN block's statistics, one entry per present channel (in current order)."""

    channel_ids: list[int]
    layer_id: int  # the original layer it lives in
    norm: list[float]
    activation: list[float] = field(default_factory=list)
    taylor: list[float] = field(default_factory=list)


def channel_weight_norms(block: FFNBlock) -> torch.Tensor:
    with torch.no_grad():
        if block.width == 0:
            return torch.zeros(0)
        reads = sum(lin.weight.detach().float().abs().mean(dim=1) for lin in block.inputs)
        down = block.down.weight.detach().float().abs().mean(dim=0)
        return (reads + down).cpu()


def _pooled(stats: dict[BlockPosition, ChannelStats], attr: str) -> dict[str, tuple[list[BlockPosition], torch.Tensor]]:
    pools: dict[str, tuple[list[BlockPosition], list[float]]] = {}
    for key in sorted(stats):
        keys, vals = pools.setdefault(key[0], ([], []))
        keys.append(key)
        vals.extend(getattr(stats[key], attr))
    return {k: (keys, torch.tensor(vals, dtype=torch.float)) for k, (keys, vals) in pools.items()}


def _split(stats: dict[BlockPosition, ChannelStats], keys: list[BlockPosition], values: torch.Tensor) -> dict[BlockPosition, torch.Tensor]:
    out, start = {}, 0
    for key in keys:
        n = len(stats[key].channel_ids)
        out[key] = values[start:start + n]
        start += n
    return out


def ffn_scores(stats: dict[BlockPosition, ChannelStats], alpha: float, *,
               normalisation: Normalisation = "minmax") -> dict[BlockPosition, torch.Tensor]:
    """S = alpha * norm(w) + (1 - alpha) * norm(mean |activation|), normalised per FFN kind."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"ffn alpha must be in [0, 1], got {alpha}")
    acts = _pooled(stats, "activation") if alpha < 1.0 else {}
    out: dict[BlockPosition, torch.Tensor] = {}
    for kind, (keys, w) in _pooled(stats, "norm").items():
        s = alpha * normalise(w, normalisation)
        if alpha < 1.0:
            a = acts[kind][1]
            if a.numel() != w.numel():
                raise ValueError(f"no activation statistic measured for {kind}: collect statistics with a calibration set")
            s = s + (1 - alpha) * normalise(a, normalisation)
        out.update(_split(stats, keys, s))
    return out


def ffn_taylor_scores(stats: dict[BlockPosition, ChannelStats], *,
                      normalisation: Normalisation = "minmax") -> dict[BlockPosition, torch.Tensor]:
    out: dict[BlockPosition, torch.Tensor] = {}
    for kind, (keys, t) in _pooled(stats, "taylor").items():
        if t.numel() != sum(len(stats[k].channel_ids) for k in keys):
            raise ValueError("no FFN Taylor importance measured: collect statistics with taylor=True")
        out.update(_split(stats, keys, normalise(t, normalisation)))
    return out


def ffn_random_scores(stats: dict[BlockPosition, ChannelStats], seed: int) -> dict[BlockPosition, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(len(b.channel_ids), generator=g) for k, b in sorted(stats.items())}
