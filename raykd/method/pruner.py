"""Choose which heads (or any scored structure) go, given scores and how many must go (Algorithm 1's
selection step; `raykd.method.plan` builds a round over every structure on `select_lowest`).

Ranking pools: "per-kind" ranks the heads of each attention kind (encoder self, decoder self,
decoder cross) among themselves and removes floor(p * h_kind) of each; "global" ranks every head
of the model in one pool (the global-threshold baseline) and removes floor(p * h_total). Counts
are cumulative against the ORIGINAL head counts, so repeated rounds reach exactly floor(p_t * h).
The lowest scores go first; ties break by (kind, layer, position) so the choice is deterministic.
"""

from __future__ import annotations

from typing import Callable, Hashable, Literal, Mapping, Sequence

import torch

from raykd.errors import ConfigError
from raykd.method.schedule import heads_removed_by

Ranking = Literal["per-kind", "global"]
BlockKey = tuple[str, int]
Removal = dict[str, dict[int, list[int]]]  # kind -> layer -> head positions to remove
Selection = dict[str, dict[int, list[int]]]  # kind -> layer position -> positions to remove (any structure)


def removal_counts(
    ratio: float,
    original: Mapping[str, int],
    present: Mapping[str, int],
    ranking: Ranking,
) -> dict[str, int]:
    """How many heads to remove now from each pool ("*" is the single global pool)."""
    if not 0.0 <= ratio < 1.0:
        raise ConfigError(f"pruning ratio must be in [0, 1), got {ratio}")
    pools = {"*": (sum(original.values()), sum(present.values()))} if ranking == "global" else {
        k: (original[k], present.get(k, 0)) for k in original
    }
    counts = {}
    for pool, (orig, now) in pools.items():
        target = heads_removed_by(ratio, orig)
        already = orig - now
        counts[pool] = max(0, target - already)
        if counts[pool] > now:
            raise ConfigError(f"cannot remove {counts[pool]} heads from {pool}: only {now} present")
    return counts


def select_heads(
    scores: Mapping[BlockKey, torch.Tensor],
    counts: Mapping[str, int],
    *,
    min_heads_per_block: int = 0,
) -> Removal:
    """The `counts[pool]` lowest-scoring heads of each pool, as positions per (kind, layer).

    `min_heads_per_block` > 0 keeps that many heads in every block (a floor); by default a block
    may lose all its heads, which removes its attention cleanly (see docs/structures.md).
    """
    pool_of = (lambda key: "*") if "*" in counts else (lambda key: key[0])
    return select_lowest(scores, pool_of, counts, floor=min_heads_per_block, what="heads")


def select_lowest(scores_by_block: Mapping[BlockKey, Sequence[float]], pool_of: Callable[[BlockKey], Hashable],
                  counts: Mapping[Hashable, int], *, floor: int | Mapping[BlockKey, int] = 0,
                  what: str = "heads") -> Selection:
    """The `counts[pool]` lowest-scoring items of each pool, keeping `floor` per block (one
    number, or one per block)."""
    keep = floor if isinstance(floor, Mapping) else {key: floor for key in scores_by_block}
    candidates: dict[Hashable, list[tuple[float, str, int, int]]] = {}
    for key, values in sorted(scores_by_block.items()):
        values = values.tolist() if isinstance(values, torch.Tensor) else list(values)
        for pos, value in enumerate(values):
            candidates.setdefault(pool_of(key), []).append((float(value), key[0], key[1], pos))
    left = {key: len(v) for key, v in scores_by_block.items()}
    out: Selection = {}
    for pool, n in counts.items():
        taken = 0
        for _value, kind, layer, pos in sorted(candidates.get(pool, [])):
            if taken == n:
                break
            if left[(kind, layer)] <= keep.get((kind, layer), 0):
                continue
            out.setdefault(kind, {}).setdefault(layer, []).append(pos)
            left[(kind, layer)] -= 1
            taken += 1
        if taken < n:
            kept = floor if not isinstance(floor, Mapping) else f"{max(keep.values(), default=0)} (or the block's minimum)"
            raise ConfigError(f"cannot remove {n} {what} from {pool} while keeping {kept} per block")
    return {k: {l: sorted(p) for l, p in layers.items()} for k, layers in out.items()}
