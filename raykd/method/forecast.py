"""What a chain configuration will end as, known before it trains.

The schedule fixes every structure's final cumulative ratio (Eq. 5 at t = T is p_max), and the
pools count against the starting model, so the final *count* of every registered structure kind
(`forecast_<count_key>_total`: forecast_heads_total, forecast_ffn_channels_total, ...) is the
configuration's alone. Which layers lose them depends on statistics the chain collects round by
round; the forecast takes them from the teacher's (the sweep's shared statistics) and plans the
whole final ratio at once. So:

- params and FLOPs are exact: every head (channel, layer) of one kind costs the same, wherever it is;
- the latency table's predicted speedup is exact when every layer of a kind ends alike
  (`uniform_shape`) and an approximation otherwise (the table prices per-layer head counts, whose
  split can differ from the chain's; BENCHMARKS §17 gives the error over every chain of `bench/search_compute.py`).

Used for constraints decided before training (`raykd.search.constraints`) and as the speed
coordinate of successive halving's rungs (`raykd.search.successive_halving`).
"""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

from raykd.measure import count_params
from raykd.method.config import ChainConfig
from raykd.method.importance import StructureStats
from raykd.method.plan import OriginalShape, plan_round
from raykd.structures.registry import structure_kinds


def final_model(teacher: nn.Module, stats: StructureStats, config: ChainConfig) -> nn.Module:
    """A copy of `teacher` pruned to the configuration's final ratios by the teacher's statistics."""
    model = copy.deepcopy(teacher)
    if any(config.prunes.values()):
        plan_round(model, stats, config, config.rounds, OriginalShape.of(teacher)).apply(model)
    return model


def forecast(teacher: nn.Module, stats: StructureStats | None, config: ChainConfig, *, table: Any = None,
             task: Any = None, batch: Any = None) -> dict[str, Any]:
    """`forecast_*` figures of the configuration's final model ({} when `stats` cannot plan it:
    missing, or lacking what the configuration's importance needs)."""
    if stats is None or not stats.fits_config(teacher, config):
        return {}
    model = final_model(teacher, stats, config)
    p_ref, p = count_params(teacher), count_params(model)
    out: dict[str, Any] = {"forecast_params": p, "forecast_params_reduction": 1 - p / p_ref,
                           **{k.forecast_key: k.total(model) for k in structure_kinds()}}
    if task is not None and batch is not None:
        device = next(teacher.parameters()).device
        batch = {k: v.to(device) for k, v in batch.items()}
        f_ref, f = task.flops(teacher, batch), task.flops(model, batch)
        out.update(forecast_flops=f, forecast_flops_reduction=1 - f / f_ref, forecast_ideal_speedup=f_ref / f)
    if table is not None:
        out["forecast_speedup"] = table.predicted_speedup_of(model)
    return out
