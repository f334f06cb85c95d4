"""Pareto front and hypervolume over a results table, with objective directions.

The non-dominated sort and the hypervolume are moocore's public functions
(`moocore.is_nondominated(..., keep_weakly=True)` and `moocore.hypervolume`, maintained C code of
the multi-objective optimisation community, never a library's private functions): raykd only
turns objectives into minimisation losses and picks the rows that may take part.

Conventions (see docs/results.md):

* Only rows with ``status == "complete"`` and a finite value for every objective take part, and,
  in a sweep with constraints, only rows whose ``feasible`` is not False (the feasible front).
  Failed, pruned and running trials, and NaN/inf metrics, are never on the front and never add
  hypervolume.
* Dominance is the usual weak one: a dominates b when a is at least as good in every objective and
  strictly better in one. Two rows with identical objective values therefore do not dominate each
  other: duplicated points are *both* on the front (a resumed or repeated configuration is a real,
  reproduced point, and hiding one of the two would depend on row order). A row tied with a front
  row in one objective and worse in another is dominated.
* Hypervolume is measured in the objectives' own units (accuracy as a fraction, speedup as a
  ratio) against a reference point that every counted point must weakly dominate. The default
  reference is the worst acceptable model: accuracy 0, speedup 1.0x (no faster than the teacher),
  reductions 0, and for min-mode size metrics the teacher's value when the sweep records it
  (params, flops), else the worst value seen among complete trials. Rows worse than the reference
  in any objective are left out (they would add nothing). With the default reference the
  hypervolume of accuracy/speedup fronts is sum-of-boxes area ``accuracy x (speedup - 1)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import moocore
import numpy as np

from raykd.errors import RaykdInputError
from raykd.results.columns import original_columns

COMPLETE = "complete"
MODES = ("max", "min")

# Default reference values for max-mode metrics: "no better than nothing / than the teacher".
MAX_MODE_REFERENCE = {
    "accuracy": 0.0,
    "test_accuracy": 0.0,
    "speedup": 1.0,
    "ideal_speedup": 1.0,
    "params_reduction": 0.0,
    "flops_reduction": 0.0,
    "memory_reduction": 0.0,
}
# Min-mode metrics whose reference is the teacher's value (from sweep.json's "teacher").
TEACHER_REFERENCE = ("params", "flops", "memory_bytes", "latency_ms")

Objectives = Sequence[tuple[str, str]]


class UnknownObjectiveError(RaykdInputError):
    """An objective metric that is not a numeric column of the results."""


class MixedSpeedSourceError(RaykdInputError):
    """Rows whose `speedup` comes from different sources (latency table, measured) in one ranking."""


def check_one_speed_source(df: Any, objectives: Objectives, ok: np.ndarray) -> None:
    """A `speedup` objective ranks the rows `ok` on one axis only if every figure on it comes from
    the same source (`speedup_source`): a table's prediction and a trial's own timing differ by
    machine noise and calibration, so mixing them would rank noise (issue 35: never silently)."""
    if "speedup" not in {m for m, _ in objectives} or "speedup_source" not in df.columns or not ok.any():
        return
    sources = df["speedup_source"][ok]
    found = sorted({str(s) for s in sources.dropna()})
    if len(found) < 2:
        return
    ids = df["trial_id"][ok] if "trial_id" in df.columns else sources.index.to_series()
    by = {src: [str(t) for t, s in zip(ids, sources) if str(s) == src] for src in found}
    listed = "; ".join(f"{src}: {len(t)} ({', '.join(t[:4])}{', ...' if len(t) > 4 else ''})" for src, t in by.items())
    raise MixedSpeedSourceError(f"the speedup objective mixes speed sources ({listed}): predicted and measured speeds "
                                "cannot share one axis; rank on retimed_speedup after `raykd pareto --retime`, or re-run "
                                "the trials with one speed.source")


def parse_objectives(spec: Any) -> list[tuple[str, str]]:
    """Objectives as ``[(metric, mode), ...]`` from any of: ``"accuracy:max,speedup:max"``,
    ``[("accuracy", "max"), ...]``, ``[{"metric": ..., "mode": ...}, ...]`` or objects with
    ``.metric``/``.mode`` (raykd.search.space.Objective). A metric without a mode is "max"."""
    if isinstance(spec, str):
        items: list[Any] = [s.strip() for s in spec.split(",") if s.strip()]
    else:
        items = list(spec or [])
    out: list[tuple[str, str]] = []
    for item in items:
        if isinstance(item, str):
            metric, _, mode = item.partition(":")
            metric, mode = metric.strip(), (mode.strip() or "max")
        elif isinstance(item, Mapping):
            metric, mode = item.get("metric"), item.get("mode", "max")
        elif hasattr(item, "metric") and hasattr(item, "mode"):
            metric, mode = item.metric, item.mode
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            metric, mode = item
        else:
            raise RaykdInputError(f"bad objective {item!r}; expected METRIC:MODE like accuracy:max")
        if not isinstance(metric, str) or not metric:
            raise RaykdInputError(f"bad objective {item!r}: empty metric name")
        if mode not in MODES:
            raise RaykdInputError(f"objective {metric}: mode must be max or min, got {mode!r}")
        out.append((metric, mode))
    if not out:
        raise RaykdInputError("no objectives given; expected e.g. accuracy:max,speedup:max")
    if len({m for m, _ in out}) != len(out):
        raise RaykdInputError(f"an objective metric is listed twice in {format_objectives(out)}")
    return out


def format_objectives(objectives: Objectives) -> str:
    return ",".join(f"{m}:{d}" for m, d in objectives)


def metric_columns(df: Any) -> list[str]:
    """Columns that can be objectives: numeric, not hyperparameters, not bookkeeping."""
    import pandas as pd  # deferred: pandas (~0.6 s); `raykd` start-up imports raykd.results

    skip = {"rounds_done", "rounds", "on_front", *original_columns()}  # a kind's original total is the teacher's
    return [c for c in df.columns
            if not c.startswith("hp_") and c not in skip
            and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]


def check_objectives(df: Any, objectives: Any) -> list[tuple[str, str]]:
    """Parsed objectives, or UnknownObjectiveError naming the known metrics."""
    objs = parse_objectives(objectives)
    known = metric_columns(df)
    for metric, _ in objs:
        if metric not in known:
            raise UnknownObjectiveError(
                f"unknown objective metric {metric!r} (known: {', '.join(known) or 'none: the table has no metric columns'})")
    return objs


def eligible_mask(df: Any, objectives: Objectives) -> np.ndarray:
    """Rows that may be on a front: complete, with finite values for every objective."""
    if len(df) == 0:
        return np.zeros(0, dtype=bool)
    ok = np.array(df["status"].astype(str) == COMPLETE, dtype=bool) if "status" in df.columns else np.ones(len(df), dtype=bool)
    for metric, _ in objectives:
        ok = ok & np.isfinite(_as_float(df[metric]))
    if "feasible" in df.columns:  # a constrained sweep: only feasible rows (None: no constraint judged it)
        ok = ok & np.array([v is not False and v is not np.False_ for v in df["feasible"]], dtype=bool)
    check_one_speed_source(df, objectives, ok)
    return ok


def loss_matrix(df: Any, objectives: Objectives) -> np.ndarray:
    """Objective values as losses to minimise (max-mode columns negated), shape (rows, objectives)."""
    cols = [(-1.0 if mode == "max" else 1.0) * _as_float(df[metric]) for metric, mode in objectives]
    return np.stack(cols, axis=1) if cols else np.zeros((len(df), 0))


def pareto_mask(df: Any, objectives: Any) -> np.ndarray:
    """Boolean array, one per row of `df`: True for the non-dominated complete rows.

    Failed/pruned/running rows and rows with a NaN objective are always False; duplicated points
    are all True when they are non-dominated (see the module doc)."""
    objs = check_objectives(df, objectives)
    mask = np.zeros(len(df), dtype=bool)
    ok = eligible_mask(df, objs)
    if ok.any():
        # keep_weakly: identical points are all kept (both are real, reproduced points)
        mask[ok] = moocore.is_nondominated(loss_matrix(df[ok], objs), keep_weakly=True)
    return mask


def default_reference(objectives: Any, teacher: Mapping[str, Any] | None = None, df: Any = None) -> dict[str, float]:
    """The default reference point, metric -> value (see the module doc for the convention)."""
    objs = parse_objectives(objectives)
    teacher = dict(teacher or {})
    ref: dict[str, float] = {}
    for metric, mode in objs:
        value: float | None = None
        if mode == "max" and metric in MAX_MODE_REFERENCE:
            value = MAX_MODE_REFERENCE[metric]
        elif mode == "min" and metric in TEACHER_REFERENCE and _finite(teacher.get(metric)):
            value = float(teacher[metric])
        elif df is not None and metric in df.columns:
            ok = eligible_mask(df, [(metric, mode)])
            values = _as_float(df[metric])[ok]
            if values.size:
                value = float(values.min() if mode == "max" else values.max())
        if value is None:
            raise RaykdInputError(f"no default hypervolume reference for {metric}:{mode}; give one explicitly")
        ref[metric] = value
    return ref


def hypervolume(df: Any, objectives: Any, reference_point: Any = None, teacher: Mapping[str, Any] | None = None) -> float:
    """Hypervolume of the complete rows of `df` against `reference_point`.

    `reference_point`: a mapping metric -> value, a sequence aligned with `objectives`, or None for
    `default_reference(objectives, teacher, df)`. Rows that do not weakly dominate the reference
    are left out; no eligible row gives 0.0."""
    objs = check_objectives(df, objectives)
    ref = resolve_reference(objs, reference_point, teacher, df)
    ref_loss = np.array([(-1.0 if mode == "max" else 1.0) * ref[m] for m, mode in objs])
    ok = eligible_mask(df, objs)
    if not ok.any():
        return 0.0
    loss = loss_matrix(df[ok], objs)
    inside = np.all(loss <= ref_loss, axis=1)
    if not inside.any():
        return 0.0
    return float(moocore.hypervolume(loss[inside], ref=ref_loss))


def resolve_reference(objectives: Any, reference_point: Any, teacher: Mapping[str, Any] | None = None,
                      df: Any = None) -> dict[str, float]:
    """A full reference point (metric -> finite float); missing metrics take their defaults."""
    objs = parse_objectives(objectives)
    if reference_point is None:
        ref: dict[str, Any] = {}
    elif isinstance(reference_point, Mapping):
        ref = dict(reference_point)
        extra = set(ref) - {m for m, _ in objs}
        if extra:
            raise RaykdInputError(f"reference point names {', '.join(sorted(extra))}, not among the objectives "
                                  f"{format_objectives(objs)}")
    else:
        values = list(reference_point)
        if len(values) != len(objs):
            raise RaykdInputError(f"reference point has {len(values)} values for {len(objs)} objectives")
        ref = {m: v for (m, _), v in zip(objs, values)}
    missing = [(m, d) for m, d in objs if m not in ref]
    if missing:
        ref.update(default_reference(missing, teacher, df))
    for metric, value in ref.items():
        if not _finite(value):
            raise RaykdInputError(f"reference point for {metric} must be a finite number, got {value!r}")
    return {m: float(ref[m]) for m, _ in objs}


def _finite(value: Any) -> bool:
    try:
        return value is not None and not isinstance(value, bool) and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _as_float(series: Any) -> np.ndarray:
    import pandas as pd  # deferred: pandas (~0.6 s); `raykd` start-up imports raykd.results

    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
