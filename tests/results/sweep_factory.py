"""Hand-built sweep directories with known fronts, for the results and analysis tests.

The rows have the exact shape a sweep writes (see raykd.results.store), with hand-picked metrics so
the front, the hypervolume and the query answers are known in advance:

    trial  status    accuracy speedup params     on the (accuracy max, speedup max) front?
    t0     complete  0.810    1.05    1,150,000  yes
    t1     complete  0.805    1.15    1,100,000  yes
    t2     complete  0.790    1.30    1,000,000  yes
    t3     complete  0.760    1.45      900,000  yes
    t4     complete  0.780    1.10    1,120,000  no  (t1 is better in both)
    t5     complete  0.700    1.40      850,000  no  (t3 is better in both)
    t6     pruned    0.900    1.60      800,000  no  (pruned: never a point)
    t7     failed    NaN      NaN       NaN      no

Teacher: valid accuracy 0.812, 1,200,000 params.
Hypervolume against (accuracy 0, speedup 1.0): strips of the staircase, sorted by speedup,
0.810*0.05 + 0.805*0.10 + 0.790*0.15 + 0.760*0.15 = 0.3535.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from raykd.results import update_pareto, write_sweep_meta, write_trial

TEACHER = {"dir": "TEACHER_DIR", "accuracy": 0.812, "test_accuracy": 0.80, "params": 1_200_000, "flops": 3_000_000_000}
KNOWN_HV = 0.810 * 0.05 + 0.805 * 0.10 + 0.790 * 0.15 + 0.760 * 0.15
KNOWN_FRONT = {"t0", "t1", "t2", "t3"}

# trial: (status, accuracy, speedup, params, alpha, n, tau, p_max, importance)
TRIALS = {
    "t0": ("complete", 0.810, 1.05, 1_150_000, 0.50, 1.0, 2.0, 0.15, "combined"),
    "t1": ("complete", 0.805, 1.15, 1_100_000, 0.45, 1.2, 2.5, 0.25, "combined"),
    "t2": ("complete", 0.790, 1.30, 1_000_000, 0.30, 0.8, 3.0, 0.35, "combined"),
    "t3": ("complete", 0.760, 1.45, 900_000, 0.20, 2.0, 1.5, 0.50, "random"),
    "t4": ("complete", 0.780, 1.10, 1_120_000, 0.90, 0.6, 2.2, 0.20, "random"),
    "t5": ("complete", 0.700, 1.40, 850_000, 0.05, 2.8, 3.8, 0.55, "random"),
    "t6": ("pruned", 0.900, 1.60, 800_000, 0.60, 1.5, 1.2, 0.45, "combined"),
    "t7": ("failed", None, None, None, 0.99, 2.9, 3.9, 0.58, "random"),
}

SPACE = {
    "name": "demo",
    "data": "synthetic:800",
    "search": {
        "alpha": {"low": 0.0, "high": 1.0},
        "n": {"low": 0.5, "high": 3.0, "log": True},
        "tau": {"low": 1.0, "high": 4.0},
        "p_max": {"low": 0.1, "high": 0.6},
        "importance": {"choices": ["combined", "random"]},
    },
    "fixed": {"p_min": 0.05, "rounds": 2},
}


def meta(name: str = "demo", data: str = "synthetic:800", objectives: Any = None, teacher: dict | None = None) -> dict:
    return {
        "name": name,
        "space": {**SPACE, "name": name, "data": data},
        "objectives": objectives or [{"metric": "accuracy", "mode": "max"}, {"metric": "speedup", "mode": "max"}],
        "teacher": dict(teacher or TEACHER),
        "data": data,
        "seed": 0,
        "created": "2026-11-22T10:00:00+00:00",
        "raykd_version": "0.1.0",
    }


def make_row(sweep: str, trial_id: str, status: str, accuracy: float | None, speedup: float | None,
             params: int | None, alpha: float = 0.5, n: float = 1.0, tau: float = 2.0, p_max: float = 0.25,
             importance: str = "combined", checkpoint_path: str | None = None, finished: int = 0) -> dict[str, Any]:
    """One trial row like the sweep writes it (two rounds for complete trials, one for pruned)."""
    teacher_params, teacher_flops, heads = TEACHER["params"], TEACHER["flops"], 48
    done = status != "failed"
    rounds_done = 2 if status == "complete" else (1 if status == "pruned" else 0)
    rounds = []
    if done:
        for r in range(1, rounds_done + 1):
            frac = r / 2 if status == "complete" else 1.0
            rounds.append({
                "round": r, "ratio": round(p_max * frac, 4),
                "accuracy": round(TEACHER["accuracy"] - (TEACHER["accuracy"] - accuracy) * frac, 4),
                "speedup": round(1 + (speedup - 1) * frac, 4), "ideal_speedup": round(1 + (speedup - 1) * frac * 1.3, 4),
                "params": int(teacher_params - (teacher_params - params) * frac),
                "flops": int(teacher_flops * (1 - 0.2 * frac)),
                "heads_total": int(heads * (1 - p_max * frac)), "heads_original": heads,
            })
    row: dict[str, Any] = {
        "sweep": sweep, "trial_id": trial_id, "status": status,
        "error": "RuntimeError: CUDA out of memory (simulated)" if status == "failed" else None,
        "hp_alpha": alpha, "hp_n": n, "hp_tau": tau, "hp_p_max": p_max, "hp_importance": importance,
        "chain_config_json": {"alpha": alpha, "n": n, "tau": tau, "p_min": 0.05, "p_max": p_max, "rounds": 2,
                              "importance": importance},
        "accuracy": accuracy, "test_accuracy": None if accuracy is None else accuracy - 0.01,
        "speedup": speedup, "ideal_speedup": None if speedup is None else 1 + (speedup - 1) * 1.3,
        "params": params, "flops": None if params is None else int(teacher_flops * 0.8),
        "memory_bytes": None if params is None else params * 4 + 10_000_000,
        "latency_ms": None if speedup is None else 20.0 / speedup,
        "params_reduction": None if params is None else 1 - params / teacher_params,
        "flops_reduction": None if params is None else 0.2,
        "memory_reduction": None if params is None else 0.1,
        "heads_total": rounds[-1]["heads_total"] if rounds else None, "heads_original": heads,
        "rounds_done": rounds_done, "rounds": 2,
        "rounds_json": rounds,
        "checkpoint_path": checkpoint_path if done else None,
        "wall_s": 30.0 + finished, "finished_at": f"2026-11-22T10:{finished:02d}:00+00:00",
    }
    return row


def make_sweep(root: Path, name: str = "demo", *, solver_dir: Path | None = None, study: bool = True,
               data: str = "synthetic:800", trials: dict | None = None) -> Path:
    """A sweep directory `root/name` with the TRIALS above (or `trials`), written with write_trial;
    with `solver_dir`, every non-failed trial gets a copy of it as its final-round checkpoint
    (plus a chain state.json, like the chain writes); with `study`, an Optuna journal study."""
    sweep = root / name
    write_sweep_meta(sweep, meta(name, data))
    for i, (tid, spec) in enumerate((trials or TRIALS).items()):
        status, acc, sp, params, alpha, n, tau, p_max, imp = spec
        ck = None
        if solver_dir is not None and status != "failed":
            ck_dir = sweep / "train" / tid / "checkpoint_000002"
            shutil.copytree(solver_dir, ck_dir)
            (ck_dir / "state.json").write_text(json.dumps({"round": 2, "records": [], "done": True}))
            ck = str(ck_dir)
        write_trial(sweep, make_row(name, tid, status, acc, sp, params, alpha, n, tau, p_max, imp, ck, finished=i))
        update_pareto(sweep)
    if study:
        write_study(sweep, name, trials or TRIALS)
    return sweep


def write_study(sweep: Path, name: str, trials: dict) -> None:
    """The Optuna journal the sweep's OptunaSearch would have left (values = [accuracy, speedup])."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = sweep / "optuna" / "study.journal"
    path.parent.mkdir(parents=True, exist_ok=True)
    st = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.create_study(study_name=f"raykd-{name}", storage=st, directions=["maximize", "maximize"])
    dists = {"alpha": FloatDistribution(0.0, 1.0), "n": FloatDistribution(0.5, 3.0, log=True),
             "tau": FloatDistribution(1.0, 4.0), "p_max": FloatDistribution(0.1, 0.6),
             "importance": CategoricalDistribution(["combined", "random"])}
    for status, acc, sp, _params, alpha, n, tau, p_max, imp in trials.values():
        state = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "failed": TrialState.FAIL}[status]
        study.add_trial(optuna.trial.create_trial(
            params={"alpha": alpha, "n": n, "tau": tau, "p_max": p_max, "importance": imp}, distributions=dists,
            values=[acc, sp] if state == TrialState.COMPLETE else None, state=state))
