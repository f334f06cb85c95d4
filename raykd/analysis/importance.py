"""Hyperparameter importance of a sweep: Optuna's evaluators over its persisted study (or over its
results rows when the study is unreadable), one Series per objective. Takes an opened `Sweep`."""

from __future__ import annotations

import shutil
import tempfile
import warnings
import weakref
from pathlib import Path
from typing import Any

import pandas as pd

from raykd import storage
from raykd.analysis.errors import UnknownObjective
from raykd.analysis.values import _finite, _missing, _py
from raykd.errors import RaykdInputError
from raykd.results.pareto import check_objectives, eligible_mask, parse_objectives

STUDY_JOURNAL = ("optuna", "study.journal")


def study_of(sweep: Any) -> Any:
    """The persisted Optuna study (optuna/study.journal), read from a private snapshot copy
    so nothing is written into the sweep directory."""
    if sweep._study is not None:
        return sweep._study
    import optuna  # deferred: optuna (~0.5 s), only for hyperparameter importance
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    uri = storage.join(sweep.uri, *STUDY_JOURNAL)
    if not storage.exists(uri):
        raise RaykdInputError(f"sweep {sweep.name} has no Optuna study ({'/'.join(STUDY_JOURNAL)} is absent)")
    snap_dir = tempfile.mkdtemp(prefix="raykd-study-")
    weakref.finalize(sweep, shutil.rmtree, snap_dir, True)  # removed with this Sweep
    snap = Path(snap_dir) / "study.journal"
    snap.write_bytes(storage.read_bytes(uri))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    st = JournalStorage(JournalFileBackend(str(snap)))
    names = optuna.get_all_study_names(st)
    want = f"raykd-{sweep.name}"
    if want in names:
        name = want
    elif len(names) == 1:
        name = names[0]
    else:
        raise RaykdInputError(f"{uri} holds no study named {want!r} (studies: {', '.join(names) or 'none'})")
    sweep._study = optuna.load_study(study_name=name, storage=st)
    return sweep._study

def importance_of(sweep: Any, objective: Any = None, *, evaluator: str = "fanova", min_trials: int = 4,
               source: str = "auto", seed: int = 0) -> Any:
    """Hyperparameter importances (Optuna's evaluators, normalised to sum 1).

    `objective`: one metric name -> a Series (param -> importance, largest first); None -> a
    DataFrame with one column per sweep objective. `source`: "study" uses the persisted
    Optuna study (target = that objective's value), "results" builds an in-memory study from
    the complete rows of the Parquet results (any metric column), "auto" prefers the study.
    `evaluator`: "fanova" (default, seeded) or "ped-anova". An objective that does not vary
    gets all-zero importances; fewer than `min_trials` usable trials is a RaykdInputError."""
    if evaluator not in ("fanova", "ped-anova"):
        raise RaykdInputError(f"unknown importance evaluator {evaluator!r} (known: fanova, ped-anova)")
    if source not in ("auto", "study", "results"):
        raise RaykdInputError(f"unknown importance source {source!r} (known: auto, study, results)")
    if objective is None:
        cols = {m: _importance_one(sweep, m, d, evaluator, min_trials, source, seed) for m, d in sweep.objectives}
        return pd.DataFrame(cols).fillna(0.0).sort_values(sweep.objectives[0][0], ascending=False)
    if isinstance(objective, str) and ":" not in objective:
        objective = f"{objective}:{dict(sweep.objectives).get(objective, 'max')}"
    ((metric, mode),) = parse_objectives(objective if isinstance(objective, str) else [objective])
    return _importance_one(sweep, metric, mode, evaluator, min_trials, source, seed)

def _importance_one(sweep: Any, metric: str, mode: str, evaluator: str, min_trials: int, source: str, seed: int) -> pd.Series:
    import optuna  # deferred: optuna (~0.5 s), only for hyperparameter importance

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study_metrics = [m for m, _ in sweep.objectives]
    has_journal = storage.exists(storage.join(sweep.uri, *STUDY_JOURNAL))
    use_study = source == "study" or (source == "auto" and has_journal and metric in study_metrics)
    if use_study:
        if metric not in study_metrics:
            raise UnknownObjective(metric, study_metrics, "objectives of the Optuna study")
        study = study_of(sweep)
        idx = study_metrics.index(metric)
        if len(study.directions) != len(study_metrics):
            raise RaykdInputError(f"the Optuna study has {len(study.directions)} objectives, sweep.json "
                                  f"{len(study_metrics)}: they do not belong together")
        usable = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                  if t.values is not None and len(t.values) > idx and _finite(t.values[idx])]
        where = "the Optuna study"
        maximise = study.directions[idx] == optuna.study.StudyDirection.MAXIMIZE
    else:
        check_objectives(sweep.df, [(metric, mode)])
        study, usable = _results_study(sweep, metric)
        where = "the results"
        maximise = mode == "max"
        idx = 0
    if len(usable) < min_trials:
        raise RaykdInputError(f"importance of {metric} needs at least {min_trials} complete trials with a value "
                              f"in {where}; sweep {sweep.name} has {len(usable)}")
    values = [t.values[idx] for t in usable]
    params = sorted({p for t in usable for p in t.params})
    if max(values) == min(values):
        return pd.Series(0.0, index=params, name=metric, dtype=float)
    sign = -1.0 if (evaluator == "ped-anova" and maximise) else 1.0  # ped-anova ranks low targets
    ev = (optuna.importance.FanovaImportanceEvaluator(seed=seed) if evaluator == "fanova"
          else optuna.importance.PedAnovaImportanceEvaluator())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = optuna.importance.get_param_importances(
                study, evaluator=ev, target=lambda t: sign * t.values[idx])
        except (RuntimeError, ValueError) as exc:
            raise RaykdInputError(f"importance of {metric} failed: {exc}") from None
    return pd.Series({k: float(v) for k, v in res.items()}, name=metric, dtype=float).sort_values(ascending=False)

def _results_study(sweep: Any, metric: str) -> tuple[Any, list[Any]]:
    """An in-memory single-objective study of the complete rows (hp_* -> metric)."""
    import optuna  # deferred: optuna (~0.5 s), only for hyperparameter importance

    df = sweep.df[eligible_mask(sweep.df, [(metric, "max")])]
    dists = _distributions(sweep, df)
    study = optuna.create_study(direction="maximize")
    usable = []
    for _, row in df.iterrows():
        params = {n: _py(row[f"hp_{n}"]) for n in dists if not _missing(row[f"hp_{n}"])}
        trial = optuna.trial.create_trial(params=params, distributions={n: dists[n] for n in params},
                                          values=[float(row[metric])])
        study.add_trial(trial)
        usable.append(trial)
    return study, usable

def _distributions(sweep: Any, df: pd.DataFrame) -> dict[str, Any]:
    # deferred: optuna (~0.5 s), only for hyperparameter importance
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    space = (sweep.meta.get("space") or {}).get("search") or {}
    out: dict[str, Any] = {}
    for col in sweep.hp_columns:
        name = col[3:]
        spec = space.get(name) or {}
        vals = [_py(v) for v in df[col] if not _missing(v)]
        choices = spec.get("choices") or None
        if choices or any(isinstance(v, (str, bool)) for v in vals):
            out[name] = CategoricalDistribution(list(dict.fromkeys([*(choices or []), *vals])))
            continue
        if not vals:
            continue
        low = min([v for v in (spec.get("low"),) if v is not None] + vals)
        high = max([v for v in (spec.get("high"),) if v is not None] + vals)
        integer = spec.get("integer") or spec.get("type") == "int" or all(isinstance(v, int) for v in vals)
        log = bool(spec.get("log")) and low > 0
        if integer:
            out[name] = IntDistribution(int(low), int(high), log=log)
        else:
            out[name] = FloatDistribution(float(low), float(high), log=log)
    return out
