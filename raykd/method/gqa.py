"""Head selection for grouped-query attention: remove heads so every K/V group stays even.

A GQA block with H query heads and G K/V heads (g = H / G per group) can only lose heads in units
that keep its groups uniform (`raykd.structures.heads.llama`). Two unit kinds, the chain's
`gqa_heads` setting:

- "within-groups" (default): unit j is the j-th lowest-scoring query head of *every* group (G
  heads); removing it leaves each group one head smaller and keeps every K/V head. Its score is
  the mean of those heads' scores.
- "groups": a unit is one whole K/V group (its g query heads and its K/V head); its score is the
  mean of its query heads' scores (per-group aggregation of Eq. 4).

A block of plain multi-head attention (g = 1) has one unit per head, as before. A pool must lose
`count` query heads; units go lowest score first while they fit, so a request that is not a
multiple of the unit size is rounded DOWN (the plan records what was asked and what went; the
cumulative schedule makes up the difference in later rounds as soon as a whole unit fits). A GQA
block keeps at least one unit (drop the layer to remove its attention entirely).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Hashable, Mapping, Sequence

import torch

from raykd.method.config import GQA_MODES
from raykd.method.pruner import Selection
from raykd.structures.keys import BlockPosition


@dataclass(frozen=True)
class Unit:
    score: float
    heads: tuple[int, ...]  # current positions


def head_units(scores: Sequence[float] | torch.Tensor, num_kv_heads: int, mode: str) -> list[Unit]:
    """The removable units of one block whose heads have `scores` (current order)."""
    values = scores.tolist() if isinstance(scores, torch.Tensor) else [float(s) for s in scores]
    h = len(values)
    if mode not in GQA_MODES:
        raise ValueError(f"gqa_heads must be one of {GQA_MODES}, got {mode!r}")
    if num_kv_heads <= 0 or h % num_kv_heads:
        raise ValueError(f"{h} query heads do not split into {num_kv_heads} K/V groups")
    g = h // num_kv_heads
    if g == 1:
        return [Unit(v, (i,)) for i, v in enumerate(values)]
    groups = [list(range(k * g, (k + 1) * g)) for k in range(num_kv_heads)]
    if mode == "groups":
        return [Unit(sum(values[i] for i in grp) / g, tuple(grp)) for grp in groups]
    ranked = [sorted(grp, key=lambda i: (values[i], i)) for grp in groups]
    return [Unit(sum(values[r[j]] for r in ranked) / num_kv_heads, tuple(sorted(r[j] for r in ranked))) for j in range(g)]


def select_head_units(units: Mapping[BlockPosition, list[Unit]], grouped: Mapping[BlockPosition, bool],
                      pool_of: Callable[[BlockPosition], Hashable], counts: Mapping[Hashable, int], *,
                      floor: int | Mapping[BlockPosition, int] = 0) -> tuple[Selection, dict[Hashable, tuple[int, int]]]:
    """(positions to remove per kind and layer, {pool: (heads asked, heads removed)} where they
    differ). A block keeps `floor` heads (one number, or one per block: a Llama-family block keeps
    at least one even once its groups are single heads), and a grouped block at least one unit."""
    keep = floor if isinstance(floor, Mapping) else {key: floor for key in units}
    candidates: dict[Hashable, list[tuple[float, str, int, int]]] = {}
    for key, block_units in sorted(units.items()):
        for index, unit in enumerate(block_units):
            candidates.setdefault(pool_of(key), []).append((unit.score, key[0], key[1], index))
    heads_left = {key: sum(len(u.heads) for u in us) for key, us in units.items()}
    units_left = {key: len(us) for key, us in units.items()}
    out: Selection = {}
    rounded: dict[Hashable, tuple[int, int]] = {}
    for pool, n in counts.items():
        taken = 0
        for _score, kind, layer, index in sorted(candidates.get(pool, [])):
            key = (kind, layer)
            size = len(units[key][index].heads)
            if taken + size > n or heads_left[key] - size < keep.get(key, 0) or (grouped[key] and units_left[key] <= 1):
                continue
            out.setdefault(kind, {}).setdefault(layer, []).extend(units[key][index].heads)
            heads_left[key] -= size
            units_left[key] -= 1
            taken += size
        if taken != n:
            rounded[pool] = (n, taken)
    return {k: {l: sorted(p) for l, p in layers.items()} for k, layers in out.items()}, rounded
