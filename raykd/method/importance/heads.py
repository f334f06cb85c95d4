"""Head importance (Eqs. 1, 3, 4 of the paper) and the baselines of its ablations.

Statistics are measured once per model and do not depend on alpha: `HeadStats` holds, per
attention block (kind, layer), the weight norm w and the mean attention entropy H of every head
(and, when asked, the Taylor importance of Michel et al. 2019). `scores(stats, alpha, ...)`
combines them for any alpha, so a sweep computes the teacher's statistics once and shares them.

Readings of the paper, stated here once:
- Weight norm (Eq. 1): w = (1/d_k) * sum over the head's d_k rows j of (mean_c |Q[j,c]| +
  mean_c |K[j,c]| + mean_c |V[j,c]|): the mean absolute weight of the head's slices of Q, K and V
  (rows = the head's output features, c = input features), summed over the three projections.
- Entropy (Eq. 3): H = -sum_k A[q,k] log A[q,k] over keys, averaged over real (non-padding)
  query positions and over every calibration batch; padded keys have probability 0 and add 0.
- Score (Eq. 4): S = alpha * norm(w) + (1 - alpha) * norm(H), with `norm` a named normalisation
  applied per attention kind ("minmax" by default, "zscore", "rank", or "none"). alpha=1 ranks by
  w alone and alpha=0 by H alone.
- Direction: the heads with the LOWEST score are pruned (the paper's "lower scores are removed").
  `entropy_sign=-1` flips the entropy term (focused heads count as important) for experiments.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
import contextlib
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from raykd.method.importance.normalise import Normalisation, normalise
from raykd.structures import AttentionBlock, find_attention_blocks
from raykd.structures.keys import BlockPosition

if TYPE_CHECKING:
    from raykd.task_interface import Task


@dataclass
class BlockStats:
    """Statistics of one attention block, one entry per present head (in current order)."""

    head_ids: list[int]
    norm: list[float]
    entropy: list[float] = field(default_factory=list)
    taylor: list[float] = field(default_factory=list)


@dataclass
class HeadStats:
    """Per-head statistics of one model, keyed by (kind, layer)."""

    blocks: dict[BlockPosition, BlockStats]

    def to_json(self) -> str:
        return json.dumps(
            [{"kind": k, "layer": l, **vars(b)} for (k, l), b in sorted(self.blocks.items())], indent=1
        )

    @classmethod
    def from_json(cls, text: str) -> "HeadStats":
        rows = json.loads(text)
        return cls({(r.pop("kind"), int(r.pop("layer"))): BlockStats(**r) for r in rows})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "HeadStats":
        return cls.from_json(Path(path).read_text())

    def matches(self, model: nn.Module) -> bool:
        """True when the statistics describe exactly `model`'s current heads."""
        current = {(b.kind, b.layer): b.head_ids for b in find_attention_blocks(model)}
        return current == {k: b.head_ids for k, b in self.blocks.items()}


def weight_norms(block: AttentionBlock) -> torch.Tensor:
    """w per head (Eq. 1): mean |weight| of the head's Q, K and V slices, summed over the three."""
    h, d = block.num_heads, block.head_dim
    if h == 0:
        return torch.zeros(0)
    with torch.no_grad():
        total = torch.zeros(h)
        for proj in (block.q, block.k, block.v):
            w = proj.weight.detach().float().abs()
            rows_per_head = w.shape[0] // d
            per_head = w.reshape(rows_per_head, d, -1).mean(dim=(1, 2)).cpu()
            if rows_per_head != h:  # grouped-query K/V: each query head reads its group's K/V
                per_head = per_head.repeat_interleave(h // rows_per_head)
            total += per_head
    return total


def attention_entropy_sums(probs: torch.Tensor, query_mask: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(sum over real query rows of each head's entropy, number of real rows).

    `probs` (B, h, Lq, Lk), `query_mask` (B, Lq) True at real query positions.
    """
    p = probs.detach().float()
    ent = -torch.special.xlogy(p, p).sum(-1)  # (B, h, Lq); 0 log 0 = 0
    rows = query_mask.bool().to(ent.device)
    summed = (ent * rows[:, None, :]).sum(dim=(0, 2)).cpu()
    return summed, int(rows.sum())


def _pooled(stats: HeadStats, attr: str) -> dict[str, tuple[list[BlockPosition], torch.Tensor]]:
    """Per kind: the block keys in order and the concatenated values of `attr`."""
    pools: dict[str, tuple[list[BlockPosition], list[float]]] = {}
    for key in sorted(stats.blocks):
        keys, vals = pools.setdefault(key[0], ([], []))
        keys.append(key)
        vals.extend(getattr(stats.blocks[key], attr))
    return {k: (keys, torch.tensor(vals, dtype=torch.float)) for k, (keys, vals) in pools.items()}


def _split(stats: HeadStats, keys: list[BlockPosition], values: torch.Tensor) -> dict[BlockPosition, torch.Tensor]:
    out, start = {}, 0
    for key in keys:
        n = len(stats.blocks[key].head_ids)
        out[key] = values[start : start + n]
        start += n
    return out


def scores(
    stats: HeadStats,
    alpha: float,
    *,
    normalisation: Normalisation = "minmax",
    entropy_sign: int = 1,
) -> dict[BlockPosition, torch.Tensor]:
    """S = alpha * norm(w) + (1 - alpha) * entropy_sign * norm(H), normalised per kind."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if entropy_sign not in (1, -1):
        raise ValueError("entropy_sign must be 1 or -1")
    norms = _pooled(stats, "norm")
    needs_entropy = alpha < 1.0
    ents = _pooled(stats, "entropy") if needs_entropy else {}
    out: dict[BlockPosition, torch.Tensor] = {}
    for kind, (keys, w) in norms.items():
        s = alpha * normalise(w, normalisation)
        if needs_entropy:
            h = ents[kind][1]
            if h.numel() != w.numel():
                raise ValueError(f"no attention entropy measured for {kind}: collect statistics with a calibration set")
            s = s + (1 - alpha) * entropy_sign * normalise(h, normalisation)
        out.update(_split(stats, keys, s))
    return out


def taylor_scores(stats: HeadStats, *, normalisation: Normalisation = "minmax") -> dict[BlockPosition, torch.Tensor]:
    """Michel et al. (2019) head importance, normalised per kind."""
    out: dict[BlockPosition, torch.Tensor] = {}
    for kind, (keys, t) in _pooled(stats, "taylor").items():
        if t.numel() != sum(len(stats.blocks[k].head_ids) for k in keys):
            raise ValueError("no Taylor importance measured: collect statistics with taylor=True")
        out.update(_split(stats, keys, normalise(t, normalisation)))
    return out


def random_scores(stats: HeadStats, seed: int) -> dict[BlockPosition, torch.Tensor]:
    """Uniform random scores (the random-pruning baseline), reproducible by seed."""
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(len(b.head_ids), generator=g) for k, b in sorted(stats.blocks.items())}


def collect_head_stats(
    model: nn.Module,
    task: "Task",
    *,
    split: str = "train",
    batches: int = 8,
    batch_size: int = 32,
    taylor: bool = False,
    extra: Any = None,
    hidden: Any = None,
    on_batch: Any = None,
) -> HeadStats:
    """Measure w, H (and optionally Taylor importance) for every head, in one pass over
    `batches` batches of `split` (the calibration set). The model is left in eval mode.

    Other structures' recorders can share the pass (`raykd.method.importance.collect_stats`
    does): `extra` (a context with `.masks` and `after_backward(examples)`), `hidden` (a
    `capture_hidden` context) and `on_batch(batch, masks, hidden capture)` after each forward."""
    from raykd.structures import capture_attention

    blocks = find_attention_blocks(model)
    keys = [(b.kind, b.layer) for b in blocks]
    ent_sum = {k: torch.zeros(b.num_heads) for k, b in zip(keys, blocks)}
    rows = dict.fromkeys(keys, 0)
    tay_sum = {k: torch.zeros(b.num_heads) for k, b in zip(keys, blocks)}
    examples = 0
    model.eval()
    grad_ctx = torch.enable_grad() if taylor else torch.inference_mode()
    with contextlib.ExitStack() as stack:
        stack.enter_context(grad_ctx)
        cap = stack.enter_context(capture_attention(model))
        o_inputs = stack.enter_context(_taylor_inputs(blocks, taylor))
        if extra is not None:
            stack.enter_context(extra)
        hcap = stack.enter_context(hidden) if hidden is not None else None
        for i, batch in enumerate(task.batches(split, batch_size)):
            if i >= batches:
                break
            cap.clear()
            if hcap is not None:
                hcap.clear()
            masks = task.query_masks(batch)
            if extra is not None:
                extra.masks = masks
            out = task.outputs(model, batch)
            for key, block in zip(keys, blocks):
                seen = cap.calls.get(key)
                if not seen or block.num_heads == 0:
                    continue
                s, n = attention_entropy_sums(seen[-1], masks[key[0]])
                ent_sum[key] += s
                rows[key] += n
            if on_batch is not None:
                on_batch(batch, masks, hcap)
            if taylor:
                model.zero_grad(set_to_none=True)
                out.loss.backward()
                for key, block in zip(keys, blocks):
                    x = o_inputs.get(key)
                    if x is None or x.grad is None or block.num_heads == 0:
                        continue
                    g = (x.detach() * x.grad).reshape(x.shape[0], -1, block.num_heads, block.head_dim)
                    tay_sum[key] += g.sum(dim=(1, 3)).abs().sum(0).cpu()
                n_examples = int(next(iter(batch.values())).shape[0])
                examples += n_examples
                if extra is not None:
                    extra.after_backward(n_examples)
                o_inputs.clear()
        model.zero_grad(set_to_none=True)
    stats = {}
    for key, block in zip(keys, blocks):
        entropy = (ent_sum[key] / rows[key]).tolist() if rows[key] else []
        tay = (tay_sum[key] / max(1, examples)).tolist() if taylor else []
        stats[key] = BlockStats(block.head_ids, weight_norms(block).tolist(), entropy, tay)
    return HeadStats(stats)


class _taylor_inputs(dict):
    """Context: while open, keeps the (grad-retaining) input of every block's O projection."""

    def __init__(self, blocks: list[AttentionBlock], active: bool) -> None:
        super().__init__()
        self._blocks, self._active, self._handles = blocks, active, []

    def __enter__(self) -> "_taylor_inputs":
        if self._active:
            for block in self._blocks:
                key = (block.kind, block.layer)

                def hook(_mod: nn.Module, args: tuple, key: BlockPosition = key) -> None:
                    x = args[0]
                    if x.requires_grad:
                        x.retain_grad()
                        self[key] = x

                self._handles.append(block.o.register_forward_pre_hook(hook))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self.clear()
