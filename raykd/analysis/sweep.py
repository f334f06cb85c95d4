"""`Sweep`: one sweep's results as pandas/pyarrow, with its front, hypervolume, queries,
per-round curves and hyperparameter importances. No Ray, no torch."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raykd import storage
from raykd.analysis.confine import check_sweep_files
from raykd.analysis.errors import NoCompleteTrialError
from raykd.analysis.export import export_trial
from raykd.analysis.importance import importance_of, study_of
from raykd.analysis.plots import plot_front, plot_rounds
from raykd.analysis.values import _finite, _num, _py, _short
from raykd.errors import RaykdInputError
from raykd.results.noninferiority import diff_low, non_inferior_mask
from raykd.results.pareto import (
    check_objectives,
    eligible_mask,
    format_objectives,
    hypervolume,
    pareto_mask,
    parse_objectives,
    resolve_reference,
)
from raykd.results.store import (
    EmptySweepError,
    read_sweep_meta,
    read_trials,
    status_counts,
    sweep_objectives,
)

ROUND_COLUMNS = ("round", "ratio", "accuracy", "speedup", "ideal_speedup", "params", "flops", "heads_total",
                 "heads_original")
_UNSET: Any = object()


def open_sweep(uri: str | os.PathLike | Sweep, *, allow_empty: bool = False) -> Sweep:
    """Open a sweep directory (`<storage>/<name>`, local path or s3:// / gs:// URI).

    Raises NotASweepError when there is no results/sweep.json and EmptySweepError when no trial
    has written a row yet (unless `allow_empty`). A sweep is data (docs/security.md): opening one
    reads its results/ and nothing it names; a symbolic link there leading out of the sweep is
    refused (`raykd.analysis.confine`), and a path a row names is resolved inside the sweep
    before it is read (export, re-timing)."""
    if isinstance(uri, Sweep):
        return uri

    check_sweep_files(storage.resolve(uri))
    meta = read_sweep_meta(uri)
    table = read_trials(uri)
    if table.num_rows == 0 and not allow_empty:
        raise EmptySweepError(f"sweep {uri} has no trial rows yet (results/trials/ is empty)")
    return Sweep(storage.resolve(uri), meta, table)


class Sweep:
    """The results of one sweep.

    Attributes: `uri`, `meta` (results/sweep.json), `table` (pyarrow, one row per trial, as
    stored), `df` (pandas, the same rows plus `on_front` for the sweep's objectives and
    `accuracy_drop`, the teacher's valid accuracy minus the trial's, in percentage points),
    `objectives` ([(metric, mode)]), `teacher` (dict), `name`."""

    def __init__(self, uri: str, meta: Mapping[str, Any], table: Any) -> None:
        self.uri = uri
        self.meta = dict(meta)
        self.table = table
        self.name: str = str(self.meta.get("name") or uri.rstrip("/").rsplit("/", 1)[-1])
        self.objectives: list[tuple[str, str]] = sweep_objectives(self.meta)
        self.teacher: dict[str, Any] = dict(self.meta.get("teacher") or {})
        df = table.to_pandas()
        try:
            df["on_front"] = pareto_mask(df, self.objectives) if len(df) else False
        except RaykdInputError:  # sweep.json names a metric the rows lack: no front to mark
            df["on_front"] = False
        acc = self.teacher_accuracy
        df["accuracy_drop"] = (acc - pd.to_numeric(df["accuracy"], errors="coerce")) * 100.0 if acc is not None else np.nan
        self.df: pd.DataFrame = df
        self._study: Any = None

    def __repr__(self) -> str:
        counts = ", ".join(f"{v} {k}" for k, v in self.counts.items())
        return f"<Sweep {self.name!r} at {self.uri}: {len(self.df)} trials ({counts})>"

    # -- basics ----------------------------------------------------------------------------------

    @property
    def counts(self) -> dict[str, int]:
        """Trials per status."""
        return status_counts(self.df["status"]) if len(self.df) else {}

    @property
    def teacher_accuracy(self) -> float | None:
        v = self.teacher.get("accuracy")
        return float(v) if _finite(v) else None

    @property
    def hp_columns(self) -> list[str]:
        """The searched hyperparameters' columns (hp_<name>)."""
        return [c for c in self.df.columns if c.startswith("hp_")]

    def trial(self, trial_id: str) -> pd.Series:
        """One trial's row."""
        rows = self.df[self.df["trial_id"] == str(trial_id)]
        if rows.empty:
            ids = list(self.df["trial_id"])
            shown = ", ".join(ids[:8]) + (f", ... ({len(ids)} in all)" if len(ids) > 8 else "")
            raise RaykdInputError(f"no trial {trial_id!r} in sweep {self.name} (trials: {shown or 'none'})")
        return rows.iloc[0]

    def hyperparameters(self, trial_id: str) -> dict[str, Any]:
        """name -> value of the searched hyperparameters of a trial."""
        row = self.trial(trial_id)
        return {c[3:]: _py(row[c]) for c in self.hp_columns}

    def chain_config(self, trial_id: str) -> dict[str, Any]:
        text = self.trial(trial_id).get("chain_config_json")
        return json.loads(text) if isinstance(text, str) and text else {}

    # -- front and hypervolume -------------------------------------------------------------------

    def resolve_objectives(self, objectives: Any = None) -> list[tuple[str, str]]:
        """`objectives` parsed and checked against the columns (None: the sweep's own)."""
        return check_objectives(self.df, self.objectives if objectives is None else objectives)

    def pareto_mask(self, objectives: Any = None) -> np.ndarray:
        return pareto_mask(self.df, self.resolve_objectives(objectives))

    def front(self, objectives: Any = None) -> pd.DataFrame:
        """The non-dominated complete trials (best first in the first objective).

        NoCompleteTrialError when no complete trial has a value for every objective."""
        objs = self.resolve_objectives(objectives)
        mask = pareto_mask(self.df, objs)
        if not mask.any():
            raise NoCompleteTrialError(self._empty_message(objs))
        metric, mode = objs[0]
        return self.df[mask].sort_values(metric, ascending=(mode == "min"), kind="stable")

    def reference_point(self, objectives: Any = None, reference: Any = None) -> dict[str, float]:
        """The hypervolume reference point in use (defaults: see raykd.results.pareto)."""
        return resolve_reference(self.resolve_objectives(objectives), reference, self.teacher, self.df)

    def hypervolume(self, objectives: Any = None, reference: Any = None) -> float:
        """Hypervolume of the complete trials (0.0 when there is none) against `reference`
        (mapping metric -> value or a sequence aligned with the objectives; default:
        accuracy 0, speedup 1.0x, min-mode sizes at the teacher's value)."""
        objs = self.resolve_objectives(objectives)
        return hypervolume(self.df, objs, self.reference_point(objs, reference), self.teacher)

    def _empty_message(self, objs: Sequence[tuple[str, str]]) -> str:
        counts = ", ".join(f"{v} {k}" for k, v in self.counts.items()) or "no trials"
        errors = self.df["error"].dropna().astype(str) if "error" in self.df.columns else pd.Series([], dtype=str)
        first = f"; first error: {_short(errors.iloc[0], 120)}" if len(errors) else ""
        n_complete = self.counts.get("complete", 0)
        what = "no complete trial" if n_complete == 0 else \
            f"no complete trial with values for {', '.join(m for m, _ in objs)}"
        return f"sweep {self.name} has {what} ({counts}{first}): the Pareto front is empty"

    # -- queries ---------------------------------------------------------------------------------

    def query(self, max_drop: float | None = _UNSET, min_speedup: float | None = None,
              max_params: float | None = None, max_flops: float | None = None,
              min_accuracy: float | None = None, by: Any = None, not_worse_at: float | None = None,
              not_worse_by: float | None = None) -> pd.Series:
        """The best complete trial under constraints.

        * ``query()`` / ``query(max_drop=0.5)``: the fastest trial (max measured speedup) whose
          valid accuracy is at most 0.5 percentage points below the teacher's.
        * ``query(min_speedup=1.2)``: the smallest trial (min params) with speedup >= 1.2x.

        `max_drop` is in accuracy points (0.5 = half a percentage point) and defaults to 0.5 only
        when no other constraint is given; `min_accuracy` is a fraction like the results. `by`
        ("metric:mode") overrides what is optimised; ties go to the higher accuracy, then the
        higher speedup, then the trial id. `not_worse_at=0.05` keeps only trials whose valid
        accuracy is not significantly below the teacher's (at or above it, or an exact McNemar
        p >= 0.05 on the same problems). `not_worse_by=2` keeps only trials shown non-inferior at a
        2-point margin: the 95% interval of the paired difference from the teacher lies above -2
        points (raykd.results.noninferiority). NoCompleteTrialError when no trial qualifies."""
        others = (min_speedup, max_params, max_flops, min_accuracy, not_worse_at, not_worse_by)
        if max_drop is _UNSET:
            max_drop = 0.5 if all(v is None for v in others) else None
        if by is None:
            by = "params:min" if min_speedup is not None and max_drop is None and min_accuracy is None else "speedup:max"
        by_objs = parse_objectives(by if isinstance(by, str) else [by])
        if len(by_objs) != 1:
            raise RaykdInputError(f"query: by must name one metric:mode, got {by!r}")
        (by_metric, by_mode), = by_objs
        check_objectives(self.df, [(by_metric, by_mode)])
        df = self.df
        ok = eligible_mask(df, [(by_metric, by_mode)])
        conds: list[tuple[str, str, np.ndarray]] = []  # (description, column, satisfied)
        if max_drop is not None:
            if self.teacher_accuracy is None:
                raise RaykdInputError(f"sweep {self.name} records no teacher accuracy; use min_accuracy instead of max_drop")
            if not max_drop >= 0:
                raise RaykdInputError(f"max_drop must be >= 0 accuracy points, got {max_drop}")
            conds.append((f"accuracy drop <= {max_drop:g} pt", "accuracy_drop", _num(df, "accuracy_drop") <= max_drop + 1e-9))
        if not_worse_at is not None:
            if not 0 < not_worse_at < 1:
                raise RaykdInputError(f"not_worse_at is a significance level in (0, 1), got {not_worse_at}")
            if "accuracy_p_vs_teacher" not in df or not df["accuracy_p_vs_teacher"].notna().any():
                raise RaykdInputError(f"sweep {self.name} records no paired tests against the teacher "
                                      "(made before raykd recorded per-problem results)")
            p = _num(df, "accuracy_p_vs_teacher")
            not_below = _num(df, "accuracy") >= (self.teacher_accuracy if self.teacher_accuracy is not None else np.inf)
            conds.append((f"no significant drop (McNemar p >= {not_worse_at:g})", "accuracy_p_vs_teacher",
                          not_below | (p >= not_worse_at)))
        if not_worse_by is not None:
            if not 0 <= not_worse_by < 100:
                raise RaykdInputError(f"not_worse_by is a margin in accuracy points in [0, 100), got {not_worse_by}")
            low = diff_low(df, self.teacher)
            if not np.isfinite(low).any():
                raise RaykdInputError(f"sweep {self.name} records no paired intervals against the teacher "
                                      "(made before raykd recorded per-problem results)")
            df = df.assign(accuracy_diff_low_pt=100.0 * low)
            conds.append((f"non-inferiority at {not_worse_by:g} pt (95% CI of the difference above -{not_worse_by:g} pt)",
                          "accuracy_diff_low_pt", non_inferior_mask(df, not_worse_by, self.teacher)))
        for value, col, op, text in ((min_speedup, "speedup", "ge", "speedup >= {:g}x"),
                                     (max_params, "params", "le", "params <= {:,.0f}"),
                                     (max_flops, "flops", "le", "FLOPs <= {:,.0f}"),
                                     (min_accuracy, "accuracy", "ge", "accuracy >= {:g}")):
            if value is None:
                continue
            vals = _num(df, col)
            conds.append((text.format(value), col, vals >= value if op == "ge" else vals <= value))
        for _, _, sat in conds:
            ok = ok & sat
        if not ok.any():
            complete = eligible_mask(df, [(by_metric, by_mode)])
            if not complete.any():
                raise NoCompleteTrialError(self._empty_message([(by_metric, by_mode)]))
            hints = []
            for desc, col, _ in conds:
                vals = _num(df, col)[complete]
                best = vals.min() if col in ("accuracy_drop", "params", "flops") else vals.max()
                hints.append(f"best {col.replace('_', ' ')} among complete trials is {best:.4g}")
            raise NoCompleteTrialError(f"no complete trial in sweep {self.name} has {' and '.join(d for d, _, _ in conds)} "
                                       f"({'; '.join(hints)})")
        cand = df[ok]
        keys = [by_metric] + [k for k in ("accuracy", "speedup") if k != by_metric] + ["trial_id"]
        asc = [by_mode == "min"] + [False] * (len(keys) - 2) + [True]
        return cand.sort_values(keys, ascending=asc, kind="stable").iloc[0]

    # -- per-round curves ------------------------------------------------------------------------

    def rounds(self, trial_id: str) -> pd.DataFrame:
        """The recursive chain's trajectory of one trial: one row per finished round (round,
        ratio, accuracy, speedup, ideal_speedup, params, flops, heads_total, ...)."""
        row = self.trial(trial_id)
        text = row.get("rounds_json")
        if not isinstance(text, str) or not text:
            return pd.DataFrame(columns=list(ROUND_COLUMNS))
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RaykdInputError(f"trial {trial_id}: rounds_json is not valid JSON ({exc})") from None
        out = pd.DataFrame(records)
        first = [c for c in ROUND_COLUMNS if c in out.columns]
        out = out[first + [c for c in out.columns if c not in first]]
        if "round" in out.columns:
            out = out.sort_values("round", kind="stable").reset_index(drop=True)
        return out

    # -- hyperparameter importance (raykd.analysis.importance) ----------------------------------

    def study(self) -> Any:
        """The persisted Optuna study (optuna/study.journal), read from a private snapshot copy (see raykd.analysis.importance.study_of)."""
        return study_of(self)

    def importance(self, objective: Any = None, *, evaluator: str = "fanova", min_trials: int = 4,
                   source: str = "auto", seed: int = 0) -> Any:
        """Hyperparameter importances (Optuna's evaluators, normalised to sum 1). (see raykd.analysis.importance.importance_of)."""
        return importance_of(self, objective, evaluator=evaluator, min_trials=min_trials, source=source, seed=seed)

    # -- plots and export (thin wrappers) --------------------------------------------------------

    def plot_front(self, path: str | os.PathLike | None = None, ax: Any = None, **kw: Any) -> Any:
        return plot_front(self, path=path, ax=ax, **kw)

    def plot_rounds(self, trial_id: str, path: str | os.PathLike | None = None, **kw: Any) -> Any:
        return plot_rounds(self, trial_id, path=path, **kw)

    def export(self, out: str | os.PathLike, trial_id: str | None = None, force: bool = False, **query: Any) -> Path:
        """Copy a trial's model to `out` (see raykd.analysis.export.export_trial)."""
        return export_trial(self, out, trial_id=trial_id, force=force, **query)

    def summary(self, objectives: Any = None) -> dict[str, Any]:
        """Counts, front size, hypervolume and its reference, the teacher."""
        objs = self.resolve_objectives(objectives)
        mask = pareto_mask(self.df, objs)
        return {"sweep": self.name, "uri": self.uri, "trials": len(self.df), "counts": self.counts,
                "objectives": format_objectives(objs), "front_size": int(mask.sum()),
                "hypervolume": self.hypervolume(objs), "reference_point": self.reference_point(objs),
                "teacher": self.teacher}


@dataclass
class Comparison:
    """Several sweeps side by side: `df` (all rows, column `sweep` = label, `on_front` within
    each sweep), `fronts` and `hypervolumes` per label against one common `reference`, and a
    `summary` table."""

    df: pd.DataFrame
    fronts: dict[str, pd.DataFrame]
    hypervolumes: dict[str, float]
    reference: dict[str, float]
    objectives: list[tuple[str, str]]
    sweeps: dict[str, Sweep] = field(repr=False, default_factory=dict)

    @property
    def summary(self) -> pd.DataFrame:
        rows = []
        for label, sw in self.sweeps.items():
            complete = self.df[(self.df["sweep"] == label) & (self.df["status"] == "complete")]
            rows.append({"sweep": label, "trials": len(sw.df), "complete": len(complete),
                         "front": len(self.fronts[label]), "hypervolume": self.hypervolumes[label],
                         "teacher_accuracy": sw.teacher_accuracy,
                         **{f"best_{m}": (complete[m].max() if d == "max" else complete[m].min()) if len(complete) else np.nan
                            for m, d in self.objectives}})
        return pd.DataFrame(rows).set_index("sweep")


def compare_sweeps(sweeps: Iterable[Any], objectives: Any = None, reference: Any = None) -> Comparison:
    """Merge several sweeps (paths, URIs or Sweep objects) with their fronts and hypervolumes.

    All hypervolumes use one reference point so they are comparable: by default, per objective,
    the least demanding of the sweeps' default references. Sweeps sharing a name are labelled
    name, name#2, ..."""
    opened = [open_sweep(s) for s in sweeps]
    if not opened:
        raise RaykdInputError("compare_sweeps needs at least one sweep")
    objs = parse_objectives(objectives if objectives is not None else opened[0].objectives)
    labels: dict[str, Sweep] = {}
    for sw in opened:
        label, k = sw.name, 2
        while label in labels:
            label, k = f"{sw.name}#{k}", k + 1
        labels[label] = sw
        check_objectives(sw.df, objs)
    if reference is None:
        refs = [resolve_reference(objs, None, sw.teacher, sw.df) for sw in labels.values()]
        ref = {m: (min(r[m] for r in refs) if d == "max" else max(r[m] for r in refs)) for m, d in objs}
    else:
        ref = resolve_reference(objs, reference, opened[0].teacher, opened[0].df)
    frames, fronts, hvs = [], {}, {}
    for label, sw in labels.items():
        df = sw.df.copy()
        df["sweep"] = label
        df["on_front"] = pareto_mask(df, objs)
        frames.append(df)
        m0, d0 = objs[0]
        fronts[label] = df[df["on_front"]].sort_values(m0, ascending=(d0 == "min"), kind="stable")
        hvs[label] = hypervolume(df, objs, ref)
    merged = pd.concat(frames, ignore_index=True, sort=False)
    return Comparison(merged, fronts, hvs, ref, objs, labels)
