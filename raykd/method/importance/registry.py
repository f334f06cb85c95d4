"""The method's side of each structure kind: how the chain scores its units.

`raykd.structures.registry` says what a kind is (where its units live, how to count, remove and
save them); the structures layer may not import the method, so the importance a kind offers is
registered here, under the same name, by the module that computes it. The plan
(`raykd.method.plan`) ranks every registered kind through this table and never names one.
Heads, FFN channels and layers are registered at the bottom.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from raykd.errors import ConfigError
from raykd.method.gqa import head_units, select_head_units
from raykd.method.importance.ffn import ffn_random_scores, ffn_scores, ffn_taylor_scores
from raykd.method.importance.heads import random_scores, scores, taylor_scores
from raykd.method.importance.layers import layer_distill_scores, layer_random_scores, layer_scores
from raykd.method.pruner import Selection
from raykd.registry import Refusal, Registry
from raykd.structures.keys import BlockPosition

if TYPE_CHECKING:
    from torch import nn

    from raykd.method.config import ChainConfig

StructureStats = Any  # raykd.method.importance.stats.StructureStats (which imports this module)
Scorer = Callable[[StructureStats, "ChainConfig", int], Mapping[BlockPosition, Any]]
"""(statistics, config, round) -> {block position: scores of its units} (layers: one float per layer)."""
Select = Callable[..., "tuple[Selection, dict[str, tuple[int, int]]] | None"]
"""(blocks, keys, scores, config, pool_of, counts, floors) -> (selection, rounded pools), or None to
let the plan take the lowest scores unit by unit."""


@dataclass(frozen=True)
class KindImportance:
    """How the chain scores one structure kind. Heads, FFN channels and layers are measured by
    `collect_stats`' own pass; a plug-in kind gives `collect` (and its JSON form), and its
    statistics travel in `StructureStats.extra[name]` (also in a sweep's shared statistics file)."""

    name: str  # the structure kind's name (`raykd.structures.registry`)
    scores: Scorer
    has_stats: Callable[[StructureStats], bool]  # the statistics hold what `scores` reads
    missing: str  # the one line when they do not
    global_pool: bool = False  # `ranking: global` pools every block of the kind together
    select: Select | None = None  # a selection in units other than one (grouped-query heads)
    collect: Callable[..., Any] | None = None  # (model, task, *, split, batches, batch_size) -> this kind's statistics
    to_json: Callable[[Any], Any] = lambda stats: stats  # its statistics as JSON values ...
    from_json: Callable[[Any], Any] = lambda data: data  # ... and back
    fits: Callable[[Any, "nn.Module"], bool] = lambda stats, model: True  # they describe `model` as it is now


_IMPORTANCE: Registry[KindImportance] = Registry(
    "importance",
    unknown=Refusal(ConfigError, "structure kind {name!r} has no importance registered: it cannot be pruned by the chain"),
    missing=Refusal(KeyError, "no importance is registered for structure kind {name!r}"),
    duplicate=Refusal(ValueError, "the importance of structure kind {name!r} is already registered"))


def register_importance(entry: KindImportance) -> KindImportance:
    """Register how kind `entry.name` is scored (ValueError when it already is)."""
    return _IMPORTANCE.register(entry.name, entry)


def unregister_importance(name: str) -> None:
    _IMPORTANCE.unregister(name)


def importance_of(name: str) -> KindImportance:
    """How kind `name` is scored; ConfigError when nothing registered its importance."""
    return _IMPORTANCE.get(name)


# The built-in kinds. The seeds' offsets (0, 500, 900) keep every random baseline as it was.
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


def grouped_heads(blocks: Sequence[Any], keys: list[BlockPosition], all_scores: Mapping[BlockPosition, torch.Tensor],
                  config: ChainConfig, pool_of: Callable[[BlockPosition], Hashable], counts: Mapping[Hashable, int],
                  floors: Mapping[BlockPosition, int]) -> tuple[Selection, dict[str, tuple[int, int]]] | None:
    """Heads of a model with grouped-query attention, removed in units that keep K/V groups even
    (None for plain multi-head attention: one head is one unit)."""
    if not any(b.num_kv_heads < b.num_heads for b in blocks):
        return None
    by_key = {(b.kind, b.layer): b for b in blocks}
    units = {k: head_units(all_scores[k], by_key[k].num_kv_heads, config.gqa_heads) for k in keys}
    grouped = {k: by_key[k].num_kv_heads < by_key[k].num_heads for k in keys}
    chosen, rounded = select_head_units(units, grouped, pool_of, counts, floor=floors)
    return chosen, {str(pool): asked_removed for pool, asked_removed in rounded.items()}


register_importance(KindImportance("heads", head_scores, lambda s: True, "head pruning needs head statistics",
                                   global_pool=True, select=grouped_heads))
register_importance(KindImportance("ffn", channel_scores, lambda s: bool(s.ffn),
                                   "FFN pruning needs FFN statistics: collect them with collect_stats(..., ffn=True)"))
register_importance(KindImportance("layers", layer_importances, lambda s: bool(s.layers),
                                   "layer pruning needs layer statistics: collect them with collect_stats(..., layers=True)"))
