"""Successive halving and constraints inside a real sweep (local Ray, Tune, Train, Optuna).

The space is built so the outcome is known without guessing accuracies: `lr` is 0.001 or 10 (a
step size that wrecks the student, at an unchanged structure: same forecast speed, lower
accuracy, so dominated at the rung), and `p_max` is 0.05 or 0.5 with a constraint
`params_reduction >= 0.05` that only 0.5 meets (decided from the configuration: rejected
before training)."""

from __future__ import annotations

import json

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from raykd.results.store import read_pareto, read_trials


def test_halving_stops_dominated_chains_and_constraints_reject_before_training(tiny_teacher_dir, tmp_path, capsys):
    from sweep_spaces import small_space, write_space

    from raykd.search.space import load_space
    from raykd.distributed.sweep import run_sweep

    raw = small_space(
        tiny_teacher_dir, tmp_path / "runs", name="search", num_samples=2,
        search={"lr": {"choices": [0.001, 10.0]}, "p_max": {"choices": [0.05, 0.5]}},
        fixed={"p_min": 0.05, "rounds": 2, "steps_per_round": 4},
        sampler={"type": "random", "seed": 2},  # draws: reject, (0.001, 0.5), reject, (10, 0.5)
        early_stop={"type": "mo-successive-halving", "eta": 2, "min_rounds": 1},
        constraints=[{"metric": "params_reduction", "min": 0.05}],
        speed={"rounds": 4, "retime_rounds": 0},
    )
    del raw["fixed"]["lr"]  # searched here
    del raw["search"]["alpha"]  # one structure for every trial that runs: the same forecast speed
    space = load_space(write_space(tmp_path / "space.yaml", raw))
    said: list[str] = []
    run_sweep(space, progress=False, log=said.append)
    root = tmp_path / "runs" / "search"
    rows = read_trials(root).to_pandas()
    rejected, ran = rows[rows.status == "rejected"], rows[rows.status != "rejected"]
    # rejected configurations: p_max 0.05 only, no round trained, no Tune trial, recorded with why
    assert len(rejected) >= 1 and set(rejected.hp_p_max) == {0.05}
    assert (rejected.rounds_done == 0).all() and rejected.error.str.contains("params_reduction >= 0.05").all()
    assert (rejected.forecast_params_reduction < 0.05).all()
    assert len(ran) == 2 and set(ran.hp_p_max) == {0.5}  # num_samples counts trials that ran
    assert ran.forecast_speedup.nunique() == 1  # same configuration of structures, same forecast
    done = ran[ran.status == "complete"]
    assert len(done) >= 1 and (done.forecast_params == done.params).all()  # the forecast is exact for params
    # halving: whatever was stopped was a wrecked chain, stopped at the rung by the scheduler
    pruned = ran[ran.status == "pruned"]
    assert len(pruned) >= 1 and set(pruned.hp_lr) == {10.0} and (pruned.rounds_done == 1).all()
    assert set(pruned.stopped_by) == {"mo-successive-halving"}
    state = json.loads((root / "results" / "halving.json").read_text())
    assert {d["trial_id"] for d in state["decisions"] if not d["go_on"]} == set(pruned.trial_id)
    # the front: complete and feasible only
    front = read_pareto(root).to_pandas()
    assert len(front) >= 1 and set(front.status) == {"complete"} and front.feasible.all()
    study = optuna.load_study(study_name="raykd-search", storage=JournalStorage(JournalFileBackend(str(root / "optuna" / "study.journal"))))
    states = [t.state.name for t in study.trials]
    assert states.count("PRUNED") == len(pruned) and states.count("COMPLETE") == len(rejected) + (ran.status == "complete").sum()
    assert all(t.params["p_max"] == 0.5 for t in study.best_trials)  # rejected ones are infeasible to Optuna too
    from raykd.cli import main

    capsys.readouterr()
    assert main(["pareto", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"params_reduction >= 0.05: {int(front.feasible.sum())} feasible trial(s), {len(rejected)} configuration(s) rejected" in out
    assert "best         feasible trial" in out
