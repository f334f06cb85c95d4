"""The Tune shell of multi-objective successive halving: STOP/CONTINUE from the rules, state in
the sweep's storage, and a pickled-and-restored scheduler (what `Tuner.restore` hands Tune)
deciding as the original would have."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("ray")

from ray.tune.schedulers import TrialScheduler  # noqa: E402
from sweep_spaces import small_space  # noqa: E402

from raykd.distributed.scheduler import HalvingScheduler, state_uri  # noqa: E402
from raykd.search.space import parse_space  # noqa: E402


@dataclass
class _Trial:  # what the scheduler reads of a Tune trial
    trial_id: str


def _space(tmp_path: Path):
    raw = small_space(tmp_path / "teacher", tmp_path / "store",
                      early_stop={"type": "mo-successive-halving", "eta": 2, "min_rounds": 1},
                      fixed={"rounds": 3})
    return parse_space(raw)


def _report(scheduler: HalvingScheduler, trial: str, round_: int, accuracy: float, speed: float) -> str:
    return scheduler.on_trial_result(None, _Trial(trial), {"round": round_, "rounds": 3, "accuracy": accuracy,
                                                           "forecast_speedup": speed})


def test_stops_a_dominated_trial_and_keeps_deciding_after_a_restore(tmp_path):
    space = _space(tmp_path)
    root = str(tmp_path / "sweep")
    scheduler = HalvingScheduler(space, root)
    assert _report(scheduler, "a", 1, 0.9, 2.0) == TrialScheduler.CONTINUE  # alone at the rung
    assert _report(scheduler, "a", 2, 0.9, 2.0) == TrialScheduler.CONTINUE  # alone at rung 2 too (rungs 1, 2 of 3)
    restored = pickle.loads(pickle.dumps(scheduler))  # as Tune's experiment state holds it
    assert restored._rules is None  # nothing cached travels; the rungs come back from storage
    # b is dominated by a (recorded before the pickle): with eta 2, one of two goes on
    assert _report(restored, "b", 1, 0.5, 1.5) == TrialScheduler.STOP
    assert _report(restored, "c", 1, 0.95, 2.5) == TrialScheduler.CONTINUE  # dominates both
    state = json.loads(Path(state_uri(root)).read_text())
    assert sorted(state["records"]["1"]) == ["a", "b", "c"]
    # another instance (the results callback's) sees who was stopped, from storage
    fresh = HalvingScheduler(space, root)
    assert fresh.stopped_by_me("b") and not fresh.stopped_by_me("a") and not fresh.stopped_by_me("c")
    assert scheduler.stopped_by_me("b")  # even the stale original, whose cache predates b


def test_results_without_rounds_or_off_rung_continue_and_write_nothing(tmp_path):
    space = _space(tmp_path)
    root = str(tmp_path / "sweep")
    scheduler = HalvingScheduler(space, root)
    assert scheduler.on_trial_result(None, _Trial("a"), {"accuracy": 0.1}) == TrialScheduler.CONTINUE
    assert _report(scheduler, "a", 3, 0.1, 1.0) == TrialScheduler.CONTINUE  # the last round is no rung
    assert not Path(state_uri(root)).exists()


def test_a_trial_re_reporting_a_rung_keeps_its_first_decision(tmp_path):
    space = _space(tmp_path)
    root = str(tmp_path / "sweep")
    scheduler = HalvingScheduler(space, root)
    _report(scheduler, "a", 1, 0.9, 2.0)
    assert _report(scheduler, "b", 1, 0.1, 1.0) == TrialScheduler.STOP
    # b restarted from a checkpoint (or a resumed sweep) reports round 1 again, now better
    assert _report(HalvingScheduler(space, root), "b", 1, 0.99, 3.0) == TrialScheduler.STOP


# -- what stopped a chain: the results row names the rule, or says no rule did (issue 35) --------

@dataclass
class _EndedTrial:  # what the results callback reads of a Tune trial
    trial_id: str
    config: dict
    last_result: dict


def _ended_rows(tmp_path: Path, early_stop: dict, ends: dict[str, dict]) -> dict[str, dict]:
    """Each trial reports `ends[trial]` (its last round, unfinished) and ends: the rows written."""
    from raykd.distributed.trial_results import ResultsCallback
    from raykd.results.store import read_trials, write_sweep_meta

    space = parse_space(small_space(tmp_path / "teacher", tmp_path / "store", early_stop=early_stop, fixed={"rounds": 3}))
    root = str(tmp_path / "sweep")
    write_sweep_meta(root, {"objectives": "accuracy:max,speedup:max"})
    scheduler = HalvingScheduler(space, root) if space.halving is not None else None
    callback = ResultsCallback(root, space, tmp_path / "journal", None, scheduler=scheduler)
    for trial_id, result in ends.items():
        trial = _EndedTrial(trial_id, {"alpha": 0.5, "p_max": 0.3}, result)
        if scheduler is not None:
            scheduler.on_trial_result(None, trial, result)
        callback.on_trial_result(0, [], trial, result)
        callback.on_trial_complete(0, [], trial)
    return {r["trial_id"]: r for r in read_trials(root).to_pylist()}


def _end(round_: int, accuracy: float, speed: float = 2.0) -> dict:
    return {"round": round_, "rounds": 3, "accuracy": accuracy, "forecast_speedup": speed, "chain_done": False}


def test_a_chain_below_the_floor_is_pruned_by_the_floor_and_one_that_stopped_by_itself_fails(tmp_path):
    rows = _ended_rows(tmp_path, {"accuracy_floor": 0.5, "after_round": 1},
                       {"low": _end(1, 0.2), "fine": _end(1, 0.9)})
    assert (rows["low"]["status"], rows["low"]["stopped_by"]) == ("pruned", "accuracy-floor")
    # above the floor and not halved: nothing stopped it, so it is not labelled as an early stop
    assert rows["fine"]["status"] == "failed" and rows["fine"]["stopped_by"] is None
    assert "no stop rule stopped it (the accuracy floor)" in rows["fine"]["error"]


def test_a_halved_chain_is_pruned_by_halving_and_the_floor_is_not_blamed(tmp_path):
    rows = _ended_rows(tmp_path, {"type": "mo-successive-halving", "eta": 2, "min_rounds": 1},
                       {"a": _end(1, 0.9, 2.0), "b": _end(1, 0.5, 1.5), "c": _end(2, 0.9, 2.5)})
    assert (rows["b"]["status"], rows["b"]["stopped_by"]) == ("pruned", "mo-successive-halving")
    assert rows["c"]["status"] == "failed" and "successive halving" in rows["c"]["error"]  # ended off any rule
