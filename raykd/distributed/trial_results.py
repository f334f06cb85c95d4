"""The Tune callback that writes raykd's results store on the driver.

Each finished, stopped or failed trial becomes one Parquet row (atomic, keyed by trial id, so a
resumed trial overwrites its row instead of adding a duplicate point). The per-round history is
read from the trial's final round checkpoint (`state.json`), not from memory, so it is complete
also for trials that resumed after a driver crash. The Pareto front is recomputed after every row.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ray.tune import Callback

from raykd import storage
from raykd.distributed.scheduler import ACCURACY_FLOOR, below_accuracy_floor
from raykd.distributed.worker import CHAIN_DONE
from raykd.errors import ConfigError
from raykd.results.columns import count_columns, forecast_columns, total_columns
from raykd.results.store import update_pareto, write_trial
from raykd.search.constraints import forecast_values, violations
from raykd.search.space import SweepSpace
from raykd.search.successive_halving import SCHEDULER_TYPE

FINAL_COLUMNS = ("accuracy", "test_accuracy", "speedup", "measured_speedup", "ideal_speedup", "params", "flops", "memory_bytes", "latency_ms",
                 "params_reduction", "flops_reduction", "memory_reduction", "world_size")
# ... and each registered structure kind's final and original totals (raykd.results.columns.count_columns)
# Accuracy with its n, 95% Wilson interval, per-problem bits, the paired test against the teacher and
# the paired difference with its interval (raykd.stats.accuracy_fields), for the valid and the test split.
STATS_COLUMNS = tuple(f"{split}_{key}" for split in ("accuracy", "test_accuracy")
                      for key in ("n", "ci_low", "ci_high", "p_vs_teacher", "lost", "gained", "correct",
                                  "diff", "diff_low", "diff_high"))
FORECAST_COLUMNS = ("forecast_speedup", "forecast_ideal_speedup", "forecast_params", "forecast_params_reduction",
                    "forecast_flops", "forecast_flops_reduction")  # ... and each kind's forecast_<count_key>_total
_ROUND_HEAD = ("round", "ratio", "accuracy", "test_accuracy", "speedup", "measured_speedup", "speedup_source", "ideal_speedup",
               "params", "flops", "memory_bytes")
_ROUND_TAIL = ("latency_ms", "train_s", "stats_s", "shared_stats", "accuracy_p_vs_teacher", "accuracy_diff", "accuracy_diff_low",
               "accuracy_diff_high")


def round_columns() -> tuple[str, ...]:
    """The keys of a round kept in `rounds_json`: each registered structure kind's total sits
    between memory_bytes and latency_ms (layers_total, heads_total, ffn_channels_total, plug-ins')."""
    return _ROUND_HEAD + total_columns() + _ROUND_TAIL


def _checkpoint_uri(result: dict[str, Any], root: str) -> str | None:
    path = result.get("checkpoint_path")
    if not path:
        return None
    if storage.is_remote(root) and not storage.is_remote(path):
        scheme = root.split("://", 1)[0]
        return f"{scheme}://{path}"
    return str(path)


def read_history(checkpoint: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """(the chain's round records, None) from a trial's last checkpoint; ([], why) when the
    checkpoint exists but its history cannot be read: the trial's row then says so (status
    "failed"), rather than passing for a trial with no rounds."""
    if not checkpoint:
        return [], None
    path = storage.join(checkpoint, "state.json")
    try:
        records = json.loads(storage.read_bytes(path))["records"]
    except (OSError, KeyError, TypeError, ValueError, RecursionError) as exc:
        return [], f"round history unreadable ({path}): {type(exc).__name__}: {str(exc)[:200]}"
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return [], f"round history unreadable ({path}): 'records' is not a list of rounds"
    return records, None


def trial_row(sweep: str, space: SweepSpace, trial: Any, result: dict[str, Any] | None, status: str,
              error: str | None, root: str) -> dict[str, Any]:
    """One results-store row for a trial."""
    result = result or {}
    config = dict(trial.config or {})
    try:
        chain_json = json.dumps(space.chain_config(config).to_dict(), sort_keys=True)
    except ConfigError as exc:  # an invalid sampled combination is recorded, not lost
        chain_json = json.dumps({"invalid": str(exc)})
    checkpoint = _checkpoint_uri(result, root)
    records, unreadable = read_history(checkpoint)
    if unreadable:
        status, error = "failed", unreadable if not error else f"{error}; {unreadable}"
    last = records[-1] if records else result
    row: dict[str, Any] = {
        "sweep": sweep, "task": space.task_spec.name, "trial_id": trial.trial_id, "status": status, "error": error,
        **{f"hp_{p.name}": config.get(p.name) for p in space.search},
        "chain_config_json": chain_json,
        **{c: _num(last.get(c, result.get(c))) for c in FINAL_COLUMNS + count_columns()},  # world_size: from the trial's report
        "speedup_source": last.get("speedup_source"),
        "latency_workload": last.get("latency_workload"),
        **{c: last.get(c) if c.endswith("_correct") else _num(last.get(c)) for c in STATS_COLUMNS},
        "rounds_done": int(last.get("round", 0) or 0),
        "rounds": int(json.loads(chain_json).get("rounds", 0) or 0),
        "rounds_json": json.dumps([{c: r.get(c) for c in round_columns()} for r in records]),
        "checkpoint_path": checkpoint,
        "node_id": result.get("node_id"),  # the Ray node rank 0 ran the last round on
        "restored_from_round": _num(result.get("restored_from_round")),  # > 0: a restarted worker group continued from there
        "wall_s": _num(result.get("time_total_s")),
        **{k: _num(result.get(k)) for k in FORECAST_COLUMNS + forecast_columns()},  # the final model as forecast before training
        **{k: _num(v) for k, v in result.items() if k.startswith("targets_")},  # the trial's targets (worker.target_metrics)
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if space.constraints:  # judged on the final figures; the forecast stands in where the trial has none

        figures = {**forecast_values(result), **{k: v for k, v in row.items() if v is not None}}
        found = violations(space.constraints, figures)
        row["constraint_violation"] = max(found)
        row["feasible"] = status == "complete" and max(found) <= 0
    return row


def unfinished_end(space: SweepSpace, result: dict[str, Any], halved: bool) -> tuple[str, str | None, str | None]:
    """(status, stopped_by, error) of a trial that ended before its chain's last round: `pruned`
    by the rule that stopped it (successive halving, else the accuracy floor, judged on the result
    that ended it), or `failed` saying so when no rule did: a chain that stopped by itself is not
    an early stop, and labelling it one would hide the fault."""
    if halved:
        return "pruned", SCHEDULER_TYPE, None
    if below_accuracy_floor(space, result):
        return "pruned", ACCURACY_FLOOR, None
    rules = [r for r, on in (("successive halving", space.halving is not None),
                             ("the accuracy floor", space.accuracy_floor is not None)) if on]
    return "failed", None, (f"the chain ended after round {result.get('round', 0) or 0} of {result.get('rounds', '?')} "
                            f"but no stop rule stopped it ({' or '.join(rules) or 'the space has none'})")


def _num(v: Any) -> float | None:
    return None if v is None or isinstance(v, (str, dict, list)) else float(v)


class ResultsCallback(Callback):
    """Writes a row per ended trial and refreshes the Pareto front (driver side)."""

    def __init__(self, root: str, space: SweepSpace, journal: Path, remote_journal: str | None, scheduler: Any = None) -> None:
        self.root, self.space, self.journal, self.remote_journal = root, space, journal, remote_journal
        self.scheduler = scheduler  # a HalvingScheduler: says which pruned trials it stopped
        self.sweep = root.rstrip("/").rsplit("/", 1)[-1]
        self.last: dict[str, dict[str, Any]] = {}

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self.last[trial.trial_id] = dict(result)

    def _write(self, trial: Any, status: str, error: str | None, stopped_by: str | None = None) -> None:
        result = self.last.get(trial.trial_id) or dict(getattr(trial, "last_result", {}) or {})
        row = trial_row(self.sweep, self.space, trial, result, status, error, self.root)
        if stopped_by is not None and row["status"] == "pruned":
            row["stopped_by"] = stopped_by
        write_trial(self.root, row)
        update_pareto(self.root)
        if self.remote_journal and self.journal.exists():
            storage.write_bytes_atomic(self.remote_journal, self.journal.read_bytes())

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = self.last.get(trial.trial_id) or dict(getattr(trial, "last_result", {}) or {})
        if result.get(CHAIN_DONE):
            self._write(trial, "complete", None)
            return
        halved = self.scheduler is not None and self.scheduler.stopped_by_me(trial.trial_id)
        status, stopped_by, error = unfinished_end(self.space, result, halved)
        self._write(trial, status, error, stopped_by)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        error = getattr(trial, "error_msg", None) or "trial failed"
        self._write(trial, "failed", str(error).strip().splitlines()[-1][:500] if error else "trial failed")
