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

Nothing here names a structure kind: the plan iterates over the registry
(`raykd.structures.registry`: what a kind is; `raykd.method.importance.registry`: how it is
scored). Whole-layer kinds (`depth`) are steps 1, every other kind is planned as in step 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Mapping, Sequence

from torch import nn

from raykd.errors import ConfigError
from raykd.method.config import ChainConfig, schedule_pairs
from raykd.method.importance import StructureStats
from raykd.method.importance.registry import (  # noqa: F401  (head_scores, channel_scores, layer_importances: re-exported)
    channel_scores,
    grouped_heads,
    head_scores,
    importance_of,
    layer_importances,
)
from raykd.method.pruner import Selection, select_lowest
from raykd.method.schedule import units_removed_by
from raykd.structures import STACK_OF, block_layer_ids, find_layer_stacks, layer_ids
from raykd.structures.keys import BlockId, BlockPosition
from raykd.structures.registry import StructureKind, shape_order, structure_kind, structure_kinds


def _layer_ids_of(model: nn.Module, blocks: Sequence[Any]) -> list[int]:
    """Original layer id per block; a kind whose blocks have no `.module` (one block per model:
    hidden channels) is outside any layer stack, so its positions are its ids."""
    if all(hasattr(b, "module") for b in blocks):
        return block_layer_ids(model, blocks)
    return [b.layer for b in blocks]


@dataclass(frozen=True)
class OriginalShape:
    """The chain's starting model, by original layer id: per kind, units per block
    ((block kind, original layer id) -> heads, channels, ...) or, for whole-layer kinds, layers per
    stack. Every ratio counts against these. `shape.heads`, `shape.ffn`, `shape.layers`: one kind's."""

    units: dict[str, dict[Any, int]]

    def __getattr__(self, name: str) -> dict[Any, int]:
        units = self.__dict__.get("units", {})
        if name in units:
            return units[name]
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")

    def totals(self) -> dict[str, int]:
        """{"layers": .., "heads": .., "ffn_channels": ..} (the keys and order of `structure_counts`)."""
        return {k.count_key: sum(self.units.get(k.name, {}).values()) for k in shape_order()}

    @classmethod
    def of(cls, model: nn.Module) -> "OriginalShape":
        units: dict[str, dict[Any, int]] = {}
        for kind in structure_kinds():
            if kind.depth:
                units[kind.name] = dict(kind.sizes(model))
                continue
            assert kind.blocks is not None and kind.block_size is not None
            blocks = kind.blocks(model)
            units[kind.name] = {(b.kind, lid): kind.block_size(b) for b, lid in zip(blocks, _layer_ids_of(model, blocks))}
        return cls(units)


@dataclass
class RoundPlan:
    """What one round removes: per kind a selection (`plan.heads`, `plan.ffn`: {block kind:
    {layer position: [unit positions]}}; `plan.layers`: {stack: [layer positions]})."""

    ratios: dict[str, float]
    selections: dict[str, Selection] = field(default_factory=dict)
    rounded: dict[str, tuple[int, int]] = field(default_factory=dict)  # GQA pool -> (heads asked, removed)

    def __getattr__(self, name: str) -> Selection:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            structure_kind(name)
        except ValueError:
            raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}") from None
        return self.__dict__.setdefault("selections", {}).setdefault(name, {})

    def removed(self) -> dict[str, int]:
        """Units removed per kind, by count key: {"heads": .., "ffn_channels": .., "layers": ..}."""
        out = {}
        for kind in structure_kinds():
            sel = self.selections.get(kind.name, {})
            out[kind.count_key] = (sum(len(p) for p in sel.values()) if kind.depth
                                   else sum(len(p) for ls in sel.values() for p in ls.values()))
        return out

    def apply(self, model: nn.Module) -> None:
        """Prune heads and channels (current positions), then drop layers."""
        for kind in sorted(structure_kinds(), key=lambda k: k.depth):
            sel = self.selections.get(kind.name, {})
            if any(sel.values()):
                kind.remove(model, sel)


def round_ratios(config: ChainConfig, round_index: int) -> dict[str, float]:
    """{structure: cumulative ratio after this round} (0 for a structure the chain leaves alone;
    layers: 0 before `layer_start_round`, then their own Eq. 5 schedule to layer_p_max)."""
    return {s: config.structure_ratio(s, round_index) for s, _lo, _hi in schedule_pairs()}


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


def _plan_depth(kind: StructureKind, model: nn.Module, stats: StructureStats, config: ChainConfig, round_index: int,
                ratio: float, original: OriginalShape, survivors: dict[str, set[int]]) -> dict[str, list[int]]:
    """Whole layers to drop per stack (each keeps one); drops them from `survivors`."""
    importance = importance_of(kind.name)
    if not importance.has_stats(stats):
        raise ConfigError(importance.missing)
    scores = importance.scores(stats, config, round_index)
    chosen: dict[str, list[int]] = {}
    for stack_kind, stack in find_layer_stacks(model).items():
        total = original.units[kind.name].get(stack_kind, len(stack))
        target = min(units_removed_by(ratio, total), total - 1)
        drop = max(0, target - (total - len(stack)))
        ranked = sorted((scores[(stack_kind, pos)], pos) for pos in range(len(stack)))
        chosen[stack_kind] = sorted(pos for _s, pos in ranked[:drop])
        ids = layer_ids(stack)
        survivors[stack_kind] -= {ids[p] for p in chosen[stack_kind]}
    return chosen


def plan_round(model: nn.Module, stats: StructureStats, config: ChainConfig, round_index: int,
               original: OriginalShape) -> RoundPlan:
    """What to remove from `model` (the current teacher, which `stats` describe) in this round."""
    ratios = round_ratios(config, round_index)
    plan = RoundPlan(ratios)
    survivors = {k: set(layer_ids(s)) for k, s in find_layer_stacks(model).items()}
    kinds = structure_kinds()
    for kind in kinds:  # whole layers first: the other kinds count over the layers that survive
        if kind.depth and ratios[kind.name] > 0:
            plan.selections[kind.name] = _plan_depth(kind, model, stats, config, round_index, ratios[kind.name],
                                                     original, survivors)

    def pool_fn(kind: StructureKind) -> Callable[[BlockPosition], Hashable]:
        if config.uniform_shape:
            return lambda key: key
        if importance_of(kind.name).global_pool and config.ranking == "global":
            return lambda key: "*"
        return lambda key: key[0]

    width = [k for k in kinds if not k.depth and ratios[k.name] > 0]
    for kind in width:
        importance = importance_of(kind.name)
        if not importance.has_stats(stats):
            raise ConfigError(importance.missing)
    for kind in width:
        assert kind.blocks is not None and kind.block_size is not None
        importance = importance_of(kind.name)
        blocks = kind.blocks(model)
        keys, counts = _counts(blocks, _layer_ids_of(model, blocks), kind.block_size, original.units[kind.name],
                               survivors, ratios[kind.name], pool_fn(kind), kind.unit)
        all_scores = importance.scores(stats, config, round_index)
        floor = config.floor(kind)
        floors: int | dict[BlockPosition, int] = floor
        if kind.block_floor is not None:  # an architecture's own minimum (Llama family: one head) on top of the config's
            floors = {(b.kind, b.layer): max(floor, kind.block_floor(b)) for b in blocks}
        grouped = importance.select(blocks, keys, all_scores, config, pool_fn(kind), counts, floors) if importance.select else None
        if grouped is not None:
            plan.selections[kind.name], plan.rounded = grouped
        else:
            plan.selections[kind.name] = select_lowest({k: all_scores[k] for k in keys}, pool_fn(kind), counts,
                                                       floor=floors, what=kind.unit)
    return plan


_grouped_heads = grouped_heads  # the name this module used before the registry
