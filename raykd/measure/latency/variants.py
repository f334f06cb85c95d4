"""The models a latency table times: copies of the dense model cut one way each.

Uniform variants cut every layer of one block kind alike (k heads, a width, d dropped layers); a
mixed variant (`mixed_variant`) cuts every registered kind at once, the way a chain does, for the
calibration. Which uniform variants a kind times is its registration's business
(`raykd.measure.latency.kinds`); the builders for heads, FFN channels and layers are here.
"""

from __future__ import annotations

import copy
import random

from torch import nn

from raykd.measure.latency.registry import latency_kinds
from raykd.structures import (
    drop_layers,
    ffn_widths,
    layer_counts,
    prune_ffn,
    prune_heads,
)


def kept_head_ids(num_heads: int, num_kv_heads: int, kept: int) -> list[int] | None:
    """Which `kept` query heads a uniform variant keeps: the first ones for plain multi-head
    attention; for grouped-query attention `kept` / G heads of every K/V group (what
    within-groups pruning makes) when `kept` is a multiple of the G groups, else the first whole
    groups when it is a multiple of the group size; None when a GQA block cannot have `kept` heads."""
    if num_kv_heads >= num_heads:
        return list(range(kept))
    size = num_heads // num_kv_heads
    if kept and kept % num_kv_heads == 0:
        return [group * size + j for group in range(num_kv_heads) for j in range(kept // num_kv_heads)]
    if kept and kept % size == 0:
        return list(range(kept))
    return None


def uniform_variant(model: nn.Module, kind: str, kept: int) -> nn.Module | None:
    """A copy of `model` with every layer of `kind` pruned to `kept` heads (`kept_head_ids`);
    None when its blocks cannot have that many (a GQA count that would leave groups uneven)."""
    from raykd.structures.heads import blocks_by_kind

    blocks = blocks_by_kind(model)[kind]
    keep = [kept_head_ids(b.num_heads, b.num_kv_heads, kept) for b in blocks]
    if any(k is None for k in keep):
        return None
    variant = copy.deepcopy(model)
    prune_heads(variant, {kind: {layer: [h for h in range(b.num_heads) if h not in k]
                                 for layer, (b, k) in enumerate(zip(blocks, keep)) if kept < b.num_heads}})
    return variant.eval()


def ffn_variant(model: nn.Module, kind: str, width: int) -> nn.Module:
    """A copy of `model` with every FFN block of `kind` cut to its first `width` channels."""
    variant = copy.deepcopy(model)
    widths = ffn_widths(variant)[kind]
    prune_ffn(variant, {kind: {layer: list(range(width, w)) for layer, w in enumerate(widths) if width < w}})
    return variant.eval()


def depth_variant(model: nn.Module, stack: str, drop: int) -> nn.Module:
    """A copy of `model` with the last `drop` layers of `stack` dropped."""
    variant = copy.deepcopy(model)
    n = layer_counts(variant)[stack]
    drop_layers(variant, {stack: list(range(n - drop, n))})
    return variant.eval()


def mixed_variant(model: nn.Module, rng: random.Random) -> nn.Module:
    """A copy of `model` cut the way a chain cuts it: every registered kind cut at a level drawn
    independently per kind (so the shapes spread over every mix), the levels drawn first, then
    each kind cut in registration order (heads, FFN widths, a few dropped layers, then plug-ins)."""
    variant = copy.deepcopy(model)
    kinds = latency_kinds()
    levels = [k.draw_level(rng) if k.draw_level is not None else None for k in kinds]
    for kind, level in zip(kinds, levels):
        kind.mix(variant, rng, level)
    return variant.eval()
