"""Parameter counts (exact; shared/tied tensors counted once)."""

from __future__ import annotations

import torch
from torch import nn


def _key(p: torch.Tensor) -> tuple:
    if p.numel() == 0 or p.device.type == "meta":
        return ("id", id(p))
    return (p.device, p.untyped_storage().data_ptr(), p.storage_offset(), tuple(p.shape), p.stride())


def _unique(params) -> list[nn.Parameter]:
    seen: set = set()
    out = []
    for p in params:
        k = _key(p)
        if k not in seen:
            seen.add(k)
            out.append(p)
    return out


def count_params(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalar parameters; a tensor shared by several modules (tied weights) counts once."""
    ps = _unique(model.parameters())
    return sum(p.numel() for p in ps if p.requires_grad or not trainable_only)


def param_breakdown(model: nn.Module) -> dict[str, int]:
    """{"attention": Q/K/V/O weights+biases of prunable blocks, "embedding": nn.Embedding weights,
    "other": the rest, "total"}. Blocks come from `raykd.structures` (none if the model has none)."""
    from raykd.errors import RaykdInputError
    from raykd.structures import find_attention_blocks

    try:
        blocks = find_attention_blocks(model)
    except RaykdInputError:
        blocks = []
    attn = {_key(p) for b in blocks for lin in b.projections for p in lin.parameters()}
    emb = {_key(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    out = {"attention": 0, "embedding": 0, "other": 0}
    for p in _unique(model.parameters()):
        k = _key(p)
        group = "attention" if k in attn else "embedding" if k in emb else "other"
        out[group] += p.numel()
    out["total"] = sum(out.values())
    return out
