"""Constraints on a sweep's metrics (`constraints: [{metric: speedup, min: 1.5}]`): what a
deployment really has, a budget, rather than a symmetric front.

A constraint bounds one recorded metric from below (`min`), above (`max`) or both. Its violation
is Optuna's convention (`Trial.set_constraint`: <= 0 feasible), scaled by the bound so metrics of
different units mix: (min - value) / |min| for a lower bound, (value - max) / |max| for an upper
one (a zero bound: unscaled). A metric a trial did not record counts as violated (1.0).

Metrics the configuration alone fixes (`FORECAST_METRICS`: the final structure counts priced by
the latency table, params, FLOPs; see `raykd.method.forecast`) are checked before anything
trains: an infeasible configuration is rejected (no training; its row says `rejected`). The rest
(accuracy, memory, a measured speedup) are checked on the final round. Only feasible complete
trials are on the stored front.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from raykd.errors import ConfigError

CONSTRAINT_METRICS = ("accuracy", "test_accuracy", "speedup", "measured_speedup", "ideal_speedup", "params", "flops",
                      "memory_bytes", "latency_ms", "params_reduction", "flops_reduction", "memory_reduction")
FORECAST_METRICS = {"speedup": "forecast_speedup", "ideal_speedup": "forecast_ideal_speedup", "params": "forecast_params",
                    "flops": "forecast_flops", "params_reduction": "forecast_params_reduction",
                    "flops_reduction": "forecast_flops_reduction"}
"""metric -> the forecast that stands for it before training (`speedup` only with the latency table)."""


@dataclass(frozen=True)
class Constraint:
    metric: str
    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        if self.metric not in CONSTRAINT_METRICS:
            raise ConfigError(f"constraints: unknown metric {self.metric!r} (known: {', '.join(CONSTRAINT_METRICS)})")
        for name in ("min", "max"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
                raise ConfigError(f"constraints: {self.metric}.{name} must be a finite number, got {v!r}")
        if self.min is None and self.max is None:
            raise ConfigError(f"constraints: {self.metric} needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ConfigError(f"constraints: {self.metric} can never hold (min {self.min} > max {self.max})")

    def violation(self, value: Any) -> float:
        """<= 0 when `value` satisfies the constraint (see the module doc)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return 1.0
        worst = -math.inf
        if self.min is not None:
            worst = max(worst, (self.min - value) / (abs(self.min) or 1.0))
        if self.max is not None:
            worst = max(worst, (value - self.max) / (abs(self.max) or 1.0))
        return float(worst)

    def text(self) -> str:
        if self.min is not None and self.max is not None:
            return f"{self.min:g} <= {self.metric} <= {self.max:g}"
        return f"{self.metric} >= {self.min:g}" if self.min is not None else f"{self.metric} <= {self.max:g}"

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, **({"min": self.min} if self.min is not None else {}),
                **({"max": self.max} if self.max is not None else {})}


def parse_constraints(raw: Any, source: str) -> tuple[Constraint, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: constraints must be a list like [{{metric: speedup, min: 1.5}}]")
    out = []
    for item in raw:
        if not isinstance(item, Mapping) or "metric" not in item or set(item) - {"metric", "min", "max"}:
            raise ConfigError(f"{source}: each constraint is {{metric, min and/or max}}, got {item!r}")
        try:
            out.append(Constraint(str(item["metric"]), item.get("min"), item.get("max")))
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    if len({c.metric for c in out}) != len(out):
        raise ConfigError(f"{source}: a constraint metric is listed twice (give min and max in one entry)")
    return tuple(out)


def violations(constraints: Sequence[Constraint], metrics: Mapping[str, Any]) -> list[float]:
    return [c.violation(metrics.get(c.metric)) for c in constraints]


def feasible(constraints: Sequence[Constraint], metrics: Mapping[str, Any]) -> bool:
    return all(v <= 0 for v in violations(constraints, metrics))


def before_training(constraints: Sequence[Constraint], speed_from_table: bool) -> tuple[Constraint, ...]:
    """The constraints a configuration's forecast decides (`speedup` only when it comes from the table)."""
    return tuple(c for c in constraints if c.metric in FORECAST_METRICS and (c.metric != "speedup" or speed_from_table))


def forecast_values(forecast: Mapping[str, Any]) -> dict[str, Any]:
    """The forecast under the metric names constraints use."""
    return {metric: forecast.get(key) for metric, key in FORECAST_METRICS.items() if forecast.get(key) is not None}


def set_constraints(trial: Any, constraints: Sequence[Constraint], found: Sequence[float]) -> None:
    """Store a trial's violations on an `optuna.Trial` before it is told (Optuna 5's
    `Trial.set_constraint`, one key per metric): TPE, NSGA-II and GP samplers then model
    feasibility, and `Study.best_trials` keeps infeasible trials off the front."""
    for c, v in zip(constraints, found):
        trial.set_constraint(c.metric, float(v))


SPEEDUP_SLACK = 4.0
"""How far above the FLOPs bound a speedup minimum must lie to be refused before a sweep starts.

The bound (`kept` below) is exact for FLOPs, but a measured or table-predicted speedup is latency:
smaller models can gain more than their FLOPs share (caches, fewer kernel launches), so a minimum
is refused only when it is more than this factor above what the FLOPs allow."""
POSITIVE_METRICS = ("speedup", "measured_speedup", "ideal_speedup", "params", "flops", "memory_bytes", "latency_ms")
SPEEDUPS = ("speedup", "measured_speedup", "ideal_speedup")
REDUCTIONS = ("params_reduction", "flops_reduction")


def check_feasible(constraints: Sequence[Constraint], *, kept: float, unit_accuracy: bool, source: str) -> None:
    """ConfigError for a constraint that no configuration of the space can meet, decided from the
    configuration alone, before anything runs (a sweep with one runs all its trials for no front).

    `kept`: a lower bound on the share of the teacher's prunable compute every chain keeps,
    (1 - largest layer_p_max) * (1 - largest of p_max and ffn_p_max): ratios are floors of counts
    (`raykd.method.schedule`), and layers, heads and FFN channels are what a chain removes.
    `unit_accuracy`: the task's accuracy is a fraction in [0, 1] (raykd's own tasks).

    Refused, conservatively: a speedup minimum above SPEEDUP_SLACK / kept; a params or FLOPs
    reduction minimum above 1 - kept / SPEEDUP_SLACK (a minimum of 1 or more always); a maximum
    <= 0 of a metric that is always positive; with unit accuracy, an accuracy minimum above 1
    or maximum below 0. Absolute params and FLOPs bounds need the teacher's size and are decided
    per trial before it trains (`before_training`)."""
    if not 0.0 < kept <= 1.0:
        raise ValueError(f"kept must be in (0, 1], got {kept}")
    for c in constraints:
        why = None
        if c.metric in SPEEDUPS and c.min is not None and c.min > SPEEDUP_SLACK / kept:
            why = (f"every chain keeps at least {kept:.0%} of the prunable compute, so its FLOPs allow at most "
                   f"{1 / kept:.3g}x (refused above {SPEEDUP_SLACK:g} times that, {SPEEDUP_SLACK / kept:.3g}x)")
        elif c.metric in REDUCTIONS and c.min is not None and c.min > 1.0 - kept / SPEEDUP_SLACK:
            why = (f"every chain keeps at least {kept:.0%} of the prunable compute (refused above a reduction of "
                   f"{1.0 - kept / SPEEDUP_SLACK:.3g})")
        elif c.metric == "memory_reduction" and c.min is not None and c.min >= 1.0:
            why = "a reduction is below 1 (something is always left)"
        elif c.metric in POSITIVE_METRICS and c.max is not None and c.max <= 0:
            why = f"{c.metric} is always positive"
        elif c.metric in REDUCTIONS and c.max is not None and c.max < 0:
            why = "pruning never adds parameters or FLOPs"
        elif unit_accuracy and c.metric in ("accuracy", "test_accuracy") and (
                (c.min is not None and c.min > 1.0) or (c.max is not None and c.max < 0.0)):
            why = "the task's accuracy is a fraction in [0, 1]"
        if why:
            raise ConfigError(f"{source}: constraint {c.text()} can never hold: {why}")
