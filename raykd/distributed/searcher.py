"""The sweep's Tune searcher: Optuna's multi-objective study behind Ray's `OptunaSearch`, with
raykd's rules on top.

- Only finished chains are COMPLETE: a chain stopped early (accuracy floor, successive halving) is
  told as PRUNED, so no round-r figure ever reaches the study's front (ray-notes §3).
- Constraints (`raykd.search.constraints`): every told trial carries its violations (Optuna 5's
  `Trial.set_constraint`, which the samplers and `best_trials` read), taken from its
  final metrics, or from its forecast for metrics the configuration fixes.
- A configuration that a before-training constraint rejects never becomes a Tune trial: the
  searcher forecasts it on the driver (CPU; the teacher, statistics and table are read once from
  the sweep's storage), tells the study it is infeasible (so constrained samplers learn where
  not to look), writes its row with status `rejected` and asks again. It costs no training and
  no trial of `num_samples`. After `MAX_REJECTIONS` in a row the search stops and says why.
"""

from __future__ import annotations

import json
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any

from raykd.distributed.worker import CHAIN_DONE, forecast_for, load_teacher_inputs
from raykd.results.store import write_trial
from raykd.search.constraints import before_training, forecast_values, set_constraints, violations
from raykd.search.space import SweepSpace, make_sampler
from raykd.storage import download_dir

MAX_REJECTIONS = 500
_FORECASTERS: dict[str, Any] = {}  # teacher URI -> forecast function (kept out of the pickled searcher)


def _forecaster(space: SweepSpace, teacher_uri: str) -> Any:
    """config dict -> forecast dict, for the sweep's teacher (loaded once per driver process)."""
    if teacher_uri not in _FORECASTERS:
        work = Path(tempfile.mkdtemp(prefix="raykd-forecast-"))
        try:
            teacher_dir = download_dir(teacher_uri, work / "teacher")
            loaded, stats, table = load_teacher_inputs(teacher_dir, {"task": space.task, "data": space.data,
                                                                     "data_seed": space.seed, "speed_source": space.speed["source"]})
        finally:
            shutil.rmtree(work, ignore_errors=True)
        threads = max(1, int(space.resources.cpus_per_worker))

        def told(config: dict[str, Any]) -> dict[str, Any]:
            chain = space.chain_config(config)
            example = next(iter(loaded.task.batches("valid", chain.latency_batch)))
            return forecast_for(loaded.model, stats, chain, table, loaded.task, example, threads)

        _FORECASTERS[teacher_uri] = told
    return _FORECASTERS[teacher_uri]


def _study_searcher_class() -> type:
    """A Tune `Searcher` that drives an Optuna study through Optuna's public ask/tell only.

    Ray's `OptunaSearch` works the same way, but raykd's rules (constraints on the told trial,
    PRUNED for stopped chains, rejections before training) needed its private `_ot_trials` and
    `_ot_study`. Here the study and the pending trials are this class's own. Its saved state is
    what OptunaSearch saves (the pending trials, pickled; Tune pickles its whole experiment state,
    so `--resume` trusts the sweep's own Tune directory: docs/security.md). Suggestions are the
    same as `OptunaSearch`'s for the same sampler and distributions (tests/distributed/test_samplers.py)."""
    import optuna  # deferred: Ray, optuna: importing distributed.sweep must not start either
    from ray.tune.search import Searcher

    class _StudySearcher(Searcher):
        def __init__(self, space: SweepSpace, journal: Path, study_name: str, *, rules: Any) -> None:
            super().__init__(metric=space.metrics, mode=space.modes)
            self._distributions = {p.name: p.to_optuna() for p in space.search}
            self._journal, self._study_name, self._space, self._rules = str(journal), study_name, space, rules
            self._study = self._open_study()
            self._pending: dict[str, optuna.trial.Trial] = {}
            self._completed: set[str] = set()

        def _open_study(self) -> optuna.Study:
            from optuna.storages import JournalStorage  # deferred: optuna: importing distributed.sweep must not start it
            from optuna.storages.journal import JournalFileBackend

            return optuna.create_study(storage=JournalStorage(JournalFileBackend(self._journal)),
                                       sampler=make_sampler(self._space), study_name=self._study_name,
                                       directions=["minimize" if m == "min" else "maximize" for m in self._space.modes],
                                       load_if_exists=True)

        def set_search_properties(self, metric: Any, mode: Any, config: dict, **spec: Any) -> bool:
            return True  # the distributions come from the space, not from Tune's param_space

        def ask(self, trial_id: str) -> dict[str, Any]:
            if trial_id not in self._pending:
                self._pending[trial_id] = self._study.ask(fixed_distributions=self._distributions)
            return dict(self._pending[trial_id].params)

        def tell(self, trial_id: str, values: list[float] | None, state: Any) -> None:
            trial = self._pending.pop(trial_id)
            try:
                self._study.tell(trial, values, state=state)
            except ValueError as exc:  # e.g. a NaN objective: Optuna refuses it; the row still records it
                optuna.logging.get_logger("raykd").warning(f"trial {trial_id}: {exc}")
            self._completed.add(trial_id)

        def suggest(self, trial_id: str) -> dict | None:
            return self._rules.suggest(self, trial_id)

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            if trial_id in self._completed or trial_id not in self._pending:
                return
            self._rules.on_trial_complete(self, trial_id, result, error)

        def save(self, checkpoint_path: str) -> None:
            # as Ray's OptunaSearch saves its state: the pending trials hold the journal-backed study
            with open(checkpoint_path, "wb") as f:
                pickle.dump({"pending": self._pending, "completed": self._completed}, f)

        def restore(self, checkpoint_path: str) -> None:
            with open(checkpoint_path, "rb") as f:
                state = pickle.load(f)
            self._pending, self._completed = state["pending"], state["completed"]
            if self._pending:
                self._study = next(iter(self._pending.values())).study

    return _StudySearcher


def make_searcher(space: SweepSpace, journal: Path, study_name: str, *, root: str | None = None,
                  teacher_dir: str | None = None, log: Any = print) -> Any:
    """The sweep's search algorithm (a `ConcurrencyLimiter` around raykd's study searcher).
    `root`, `teacher_dir`: where rejected configurations are recorded and forecast from (needed
    when the space has constraints the configuration decides)."""
    import optuna  # deferred: Ray, optuna: importing distributed.sweep must not start either
    from ray.tune.search import ConcurrencyLimiter, Searcher

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    early = before_training(space.constraints, space.speed["source"] == "table")

    def constraint_values(result: dict[str, Any] | None) -> list[float]:
        metrics = dict(result or {})
        for metric, value in forecast_values(metrics).items():
            metrics.setdefault(metric, value)
        return violations(space.constraints, metrics)

    class Rules:
        """raykd's rules on top of plain ask/tell (see the module doc)."""

        @staticmethod
        def on_trial_complete(searcher: Any, trial_id: str, result: dict | None, error: bool) -> None:
            if space.constraints:
                set_constraints(searcher._pending[trial_id], space.constraints, constraint_values(result))
            if result is not None and not result.get(CHAIN_DONE, False):
                result = None  # -> PRUNED
            values = None if not result else [result.get(m) for m in space.metrics]
            if values is not None and any(v is None for v in values):
                values = None
            state = (optuna.trial.TrialState.COMPLETE if values is not None
                     else optuna.trial.TrialState.FAIL if error else optuna.trial.TrialState.PRUNED)
            searcher.tell(trial_id, values, state)

        @staticmethod
        def suggest(searcher: Any, trial_id: str) -> dict | None:
            if not early:
                return searcher.ask(trial_id)
            for _ in range(MAX_REJECTIONS):
                config = searcher.ask(trial_id)
                told = _forecaster(space, str(teacher_dir))(config)
                found = violations(early, forecast_values(told))
                if all(v <= 0 for v in found):
                    return config
                Rules.reject(searcher, trial_id, config, told, found)
            log(f"the constraints rejected {MAX_REJECTIONS} configurations in a row before training "
                f"({'; '.join(c.text() for c in early)}): stopping the search; loosen them or narrow the space")
            return Searcher.FINISHED

        @staticmethod
        def reject(searcher: Any, trial_id: str, config: dict[str, Any], told: dict[str, Any], found: list[float]) -> None:
            ot_trial = searcher._pending[trial_id]
            set_constraints(ot_trial, space.constraints, constraint_values(told))
            ot_trial.set_user_attr("raykd_rejected", True)
            values = _rejected_values(space, told)
            searcher.tell(trial_id, values, optuna.trial.TrialState.PRUNED if values is None else optuna.trial.TrialState.COMPLETE)
            searcher._completed.discard(trial_id)  # the Tune trial id asks again
            if root is not None:
                write_rejected_row(root, space, f"rejected-{ot_trial.number:05d}", config, told,
                                   [c.text() for c, v in zip(early, found) if v > 0])

    algo = _study_searcher_class()(space, journal, study_name, rules=Rules())
    return ConcurrencyLimiter(algo, max_concurrent=space.resources.concurrent_trials)


def _rejected_values(space: SweepSpace, told: dict[str, Any]) -> list[float] | None:
    """What the study is told for a rejected configuration: its forecast where the configuration
    fixes an objective, the worst accuracy (0) otherwise; None (tell PRUNED) when an objective has
    neither. Constrained samplers rank infeasible trials below every feasible one whatever these
    values are; they only keep the study's records complete."""
    known = forecast_values(told)
    out = []
    for o in space.objectives:
        if o.metric in known:
            out.append(float(known[o.metric]))
        elif o.metric in ("accuracy", "test_accuracy") and o.mode == "max":
            out.append(0.0)
        else:
            return None
    return out


def write_rejected_row(root: str, space: SweepSpace, trial_id: str, config: dict[str, Any], told: dict[str, Any],
                       broken: list[str]) -> None:
    write_trial(root, {
        "sweep": root.rstrip("/").rsplit("/", 1)[-1], "task": space.task_spec.name, "trial_id": trial_id, "status": "rejected",
        "error": f"rejected before training: the forecast breaks {', '.join(broken)}",
        **{f"hp_{p.name}": config.get(p.name) for p in space.search},
        "chain_config_json": json.dumps(space.chain_config(config).to_dict(), sort_keys=True),
        "rounds_done": 0, "feasible": False, **{k: v for k, v in told.items() if isinstance(v, (int, float))},
    })
