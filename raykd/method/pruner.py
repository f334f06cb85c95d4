"""Choose which scored structures go, given their scores and how many each pool must lose
(Algorithm 1's selection step; `raykd.method.plan` builds a round over every structure on it and
says how the pools and counts are formed).

The lowest scores go first; ties break by (kind, layer, position) so the choice is deterministic.
"""

from __future__ import annotations

from typing import Callable, Hashable, Mapping, Sequence

import torch

from raykd.errors import ConfigError
from raykd.structures.keys import BlockPosition

Selection = dict[str, dict[int, list[int]]]  # kind -> layer position -> positions to remove (any structure)


def select_lowest(scores_by_block: Mapping[BlockPosition, Sequence[float]], pool_of: Callable[[BlockPosition], Hashable],
                  counts: Mapping[Hashable, int], *, floor: int | Mapping[BlockPosition, int] = 0,
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
