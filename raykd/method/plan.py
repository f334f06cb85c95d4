"""One round's pruning plan over every structure: which layers, heads and FFN channels go.

Per structure s (heads, ffn, layers) the schedule (Eq. 5) gives a cumulative ratio
r_s = p_min_s + (p_max_s - p_min_s) * (t / T)^n, with one growth exponent n for all. How they
combine in a round:

1. Layers first: each stack (encoder layers, decoder layers) keeps at least one layer and has lost
   floor(r_layers * L) of its L original layers after the round; the lowest-importance present
   layers (Block Influence by default, or the distillation-loss increase when a layer is skipped)
   go. Layers may start later than the width (`layer_start_round`: width before depth): their
   ratio is 0 before that round and reaches layer_p_max at the last one.
2. Then heads and FFN channels, counted over the layers that survive: after the round a pool has
   lost floor(r_s * h) of the h structures its surviving layers originally had. So the three
   ratios are independent: dropping a layer does not count as pruning its heads or channels.
   Pools: per attention/FFN kind (`ranking: per-kind`), one pool of every head (`global`, heads
   only), or per layer (`uniform_shape`: every layer of a kind loses the same number, so a
   uniform model stays uniform and can be exported as a stock config).
3. Floors: `min_heads_per_block` heads and `min_ffn_per_block` channels stay in every block.
4. Grouped-query attention: heads go in units that keep every K/V group even (`gqa_heads`:
   within groups, or whole groups; `raykd.method.gqa`), a pool's count rounded down to whole
   units (`RoundPlan.rounded` says where).

The lowest scores go first; ties break by (kind, layer, position), so the plan is deterministic.
Applying a plan prunes heads and channels (positions in the current model) before dropping
layers (which renumbers what follows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Mapping, Sequence

import torch
from torch import nn

from raykd.errors import ConfigError
from raykd.method.config import SCHEDULE_PAIRS, ChainConfig
from raykd.method.gqa import head_units, select_head_units
from raykd.method.importance import (
    StructureStats,
    ffn_random_scores,
    ffn_scores,
    ffn_taylor_scores,
    layer_distill_scores,
    layer_random_scores,
    layer_scores,
    random_scores,
    scores,
    taylor_scores,
)
from raykd.method.pruner import Selection, select_lowest
from raykd.method.schedule import units_removed_by
from raykd.structures import (
    STACK_OF,
    block_layer_ids,
    drop_layers,
    find_attention_blocks,
    find_ffn_blocks,
    find_layer_stacks,
    layer_ids,
    prune_ffn,
    prune_heads,
)
from raykd.structures.keys import BlockId, BlockPosition


@dataclass(frozen=True)
class OriginalShape:
    """The chain's starting model, by original layer id: heads and FFN channels per block, layers
    per stack. Every ratio counts against these."""

    heads: dict[BlockId, int]  # (attention kind, original layer id) -> heads
    ffn: dict[BlockId, int]  # (FFN kind, original layer id) -> channels
    layers: dict[str, int]  # stack kind -> layers

    def totals(self) -> dict[str, int]:
        """{"layers": .., "heads": .., "ffn_channels": ..} (the keys of `structure_counts`)."""
        return {"layers": sum(self.layers.values()), "heads": sum(self.heads.values()), "ffn_channels": sum(self.ffn.values())}

    @classmethod
    def of(cls, model: nn.Module) -> "OriginalShape":
        blocks, ffns = find_attention_blocks(model), find_ffn_blocks(model)
        return cls({(b.kind, lid): b.num_heads for b, lid in zip(blocks, block_layer_ids(model, blocks))},
                   {(b.kind, lid): b.width for b, lid in zip(ffns, block_layer_ids(model, ffns))},
                   {k: len(s) for k, s in find_layer_stacks(model).items()})


@dataclass
class RoundPlan:
    ratios: dict[str, float]
    heads: Selection = field(default_factory=dict)
    ffn: Selection = field(default_factory=dict)
    layers: dict[str, list[int]] = field(default_factory=dict)  # stack -> positions to drop
    rounded: dict[str, tuple[int, int]] = field(default_factory=dict)  # GQA pool -> (heads asked, removed)

    def removed(self) -> dict[str, int]:
        return {"heads": sum(len(p) for ls in self.heads.values() for p in ls.values()),
                "ffn_channels": sum(len(p) for ls in self.ffn.values() for p in ls.values()),
                "layers": sum(len(p) for p in self.layers.values())}

    def apply(self, model: nn.Module) -> None:
        """Prune heads and channels (current positions), then drop layers."""
        if any(self.heads.values()):
            prune_heads(model, self.heads)
        if any(self.ffn.values()):
            prune_ffn(model, self.ffn)
        if any(self.layers.values()):
            drop_layers(model, {k: v for k, v in self.layers.items() if v})


def head_scores(stats: StructureStats, config: ChainConfig, round_index: int) -> dict[BlockPosition, torch.Tensor]:
    if config.importance == "random":
        return random_scores(stats.heads, seed=config.seed * 1000 + round_index)
    if config.importance == "taylor":
        return taylor_scores(stats.heads, normalisation=config.normalisation)  # type: ignore[arg-type]
    return scores(stats.heads, config.alpha, normalisation=config.normalisation,  # type: ignore[arg-type]
                  entropy_sign=config.entropy_sign)


def channel_scores(stats: StructureStats, config: ChainConfig, round_index: int) -> dict[BlockPosition, torch.Tensor]:
    if config.importance == "random":
        return ffn_random_scores(stats.ffn, seed=config.seed * 1000 + 500 + round_index)
    if config.importance == "taylor":
        return ffn_taylor_scores(stats.ffn, normalisation=config.normalisation)  # type: ignore[arg-type]
    return ffn_scores(stats.ffn, config.ffn_alpha, normalisation=config.normalisation)  # type: ignore[arg-type]


def layer_importances(stats: StructureStats, config: ChainConfig, round_index: int) -> dict[BlockPosition, float]:
    """Block Influence, the distillation-loss increase when skipped, or random scores (the random
    baseline is random for every structure)."""
    if config.importance == "random" or config.layer_importance == "random":
        return layer_random_scores(stats.layers, seed=config.seed * 1000 + 900 + round_index)
    if config.layer_importance == "distill-loss":
        return layer_distill_scores(stats.layers)
    return layer_scores(stats.layers)


def round_ratios(config: ChainConfig, round_index: int) -> dict[str, float]:
    """{structure: cumulative ratio after this round} (0 for a structure the chain leaves alone;
    layers: 0 before `layer_start_round`, then their own Eq. 5 schedule to layer_p_max)."""
    return {s: config.structure_ratio(s, round_index) for s, _lo, _hi in SCHEDULE_PAIRS}


def _counts(blocks: Sequence[Any], layer_of: Sequence[int], present: Callable[[Any], int], original: Mapping[BlockId, int],
            survivors: Mapping[str, set[int]], ratio: float, pool_of: Callable[[BlockPosition], Hashable],
            what: str) -> tuple[list[BlockPosition], dict[Hashable, int]]:
    """(the surviving blocks' keys, per pool how many to remove now so floor(ratio * original) are gone)."""
    orig: dict[Hashable, int] = {}
    now: dict[Hashable, int] = {}
    keys = []
    for block, lid in zip(blocks, layer_of):
        stack = STACK_OF.get(block.kind)
        if stack in survivors and lid not in survivors[stack]:
            continue
        key = (block.kind, block.layer)
        if (block.kind, lid) not in original:
            raise ConfigError(f"{what}: {block.kind} layer {lid} is not in the chain's starting model")
        keys.append(key)
        pool = pool_of(key)
        orig[pool] = orig.get(pool, 0) + original[(block.kind, lid)]
        now[pool] = now.get(pool, 0) + present(block)
    counts = {pool: max(0, units_removed_by(ratio, orig[pool]) - (orig[pool] - now[pool])) for pool in orig}
    return keys, counts


def plan_round(model: nn.Module, stats: StructureStats, config: ChainConfig, round_index: int,
               original: OriginalShape) -> RoundPlan:
    """What to remove from `model` (the current teacher, which `stats` describe) in this round."""
    ratios = round_ratios(config, round_index)
    plan = RoundPlan(ratios)
    stacks = find_layer_stacks(model)
    survivors = {k: set(layer_ids(s)) for k, s in stacks.items()}
    if ratios["layers"] > 0:
        if not stats.layers:
            raise ConfigError("layer pruning needs layer statistics: collect them with collect_stats(..., layers=True)")
        importance = layer_importances(stats, config, round_index)
        for kind, stack in stacks.items():
            total = original.layers.get(kind, len(stack))
            target = min(units_removed_by(ratios["layers"], total), total - 1)
            drop = max(0, target - (total - len(stack)))
            ranked = sorted((importance[(kind, pos)], pos) for pos in range(len(stack)))
            plan.layers[kind] = sorted(pos for _s, pos in ranked[:drop])
            ids = layer_ids(stack)
            survivors[kind] -= {ids[p] for p in plan.layers[kind]}

    def pool_fn(structure: str) -> Callable[[BlockPosition], Hashable]:
        if config.uniform_shape:
            return lambda key: key
        if structure == "heads" and config.ranking == "global":
            return lambda key: "*"
        return lambda key: key[0]

    if ratios["ffn"] > 0 and not stats.ffn:
        raise ConfigError("FFN pruning needs FFN statistics: collect them with collect_stats(..., ffn=True)")
    # (structure, its blocks, size of a block, original sizes, scores, floor per block)
    width_of: list[tuple[str, list[Any], Callable[[Any], int], dict[BlockId, int], Callable[..., Any], int]] = [
        ("heads", find_attention_blocks(model), lambda b: b.num_heads, original.heads, head_scores, config.min_heads_per_block),
        ("ffn", find_ffn_blocks(model), lambda b: b.width, original.ffn, channel_scores, config.min_ffn_per_block),
    ]
    for structure, blocks, size, originals, scorer, floor in width_of:
        if ratios[structure] <= 0:
            continue
        what = "heads" if structure == "heads" else "FFN channels"
        keys, counts = _counts(blocks, block_layer_ids(model, blocks), size, originals, survivors, ratios[structure],
                               pool_fn(structure), what)
        all_scores = scorer(stats, config, round_index)
        floors: int | dict[BlockPosition, int] = floor
        if structure == "heads":  # an architecture's own minimum (Llama family: one head) on top of the config's
            floors = {(b.kind, b.layer): max(floor, b.min_heads) for b in blocks}
        if structure == "heads" and any(b.num_kv_heads < b.num_heads for b in blocks):
            chosen, plan.rounded = _grouped_heads(blocks, keys, all_scores, config, pool_fn(structure), counts, floors)
        else:
            chosen = select_lowest({k: all_scores[k] for k in keys}, pool_fn(structure), counts, floor=floors, what=what)
        setattr(plan, structure, chosen)
    return plan


def _grouped_heads(blocks: Sequence[Any], keys: list[BlockPosition], all_scores: Mapping[BlockPosition, torch.Tensor],
                   config: ChainConfig, pool_of: Callable[[BlockPosition], Hashable], counts: Mapping[Hashable, int],
                   floors: Mapping[BlockPosition, int]) -> tuple[Selection, dict[str, tuple[int, int]]]:
    """Heads of a model with grouped-query attention, removed in units that keep K/V groups even."""
    by_key = {(b.kind, b.layer): b for b in blocks}
    units = {k: head_units(all_scores[k], by_key[k].num_kv_heads, config.gqa_heads) for k in keys}
    grouped = {k: by_key[k].num_kv_heads < by_key[k].num_heads for k in keys}
    chosen, rounded = select_head_units(units, grouped, pool_of, counts, floor=floors)
    return chosen, {str(pool): asked_removed for pool, asked_removed in rounded.items()}
