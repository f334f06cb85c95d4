"""Real local sweeps over tasks other than the equation solver: the example plug-in (sequence
classification, a user's module found by import path, data from the user's own JSONL files) and
raykd's causal-LM task on a tiny random Llama. Both go through Ray Tune + Optuna + Ray Train,
the shared teacher, the latency table, the end-of-sweep re-timing and the results store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sweep_spaces import TEST_SPEED, write_space

from raykd.results.store import read_pareto, read_trials

pytestmark = [pytest.mark.ray, pytest.mark.slow]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FIXED = {"p_min": 0.05, "rounds": 1, "epochs_per_round": 1, "lr": 0.001, "calib_batches": 2, "latency_batch": 8,
         "latency_repeats": 3}
COMMON = {"sampler": {"type": "random", "seed": 0}, "resources": {"workers": 1, "cpus_per_worker": 1, "concurrent_trials": 1},
          "speed": TEST_SPEED}


def _write_jsonl(root: Path, seed: int = 0) -> Path:
    from majority_task import synthetic

    root.mkdir(parents=True, exist_ok=True)
    rows = synthetic(300, seed)
    for name, part in (("train", rows[:240]), ("valid", rows[240:])):
        (root / f"{name}.jsonl").write_text("".join(json.dumps({"tokens": t, "label": y}) + "\n" for t, y in part))
    return root


def test_a_users_task_plugin_runs_through_a_real_sweep_and_resume_checks_its_data(tmp_path, monkeypatch, capsys):
    from raykd.cli import main

    monkeypatch.syspath_prepend(str(EXAMPLES))  # found as the driver finds it; the workers get it via runtime_env
    monkeypatch.delenv("PYTHONPATH", raising=False)
    data = _write_jsonl(tmp_path / "data")
    space = write_space(tmp_path / "space.yaml", {
        "name": "maj", "task": "majority_task:make_task", "data": str(data), "storage": str(tmp_path / "runs"),
        "teacher": {"epochs": 3, "hidden_size": 32, "heads": 2},
        "search": {"p_max": {"low": 0.3, "high": 0.6}, "ffn_p_max": {"low": 0.2, "high": 0.6}},
        "fixed": FIXED, "num_samples": 2, **COMMON})
    assert main(["sweep", "--space", str(space), "--quiet"]) == 0
    root = tmp_path / "runs" / "maj"
    trials = read_trials(root).to_pandas()
    assert len(trials) == 2 and set(trials.status) == {"complete"} and set(trials.task) == {"majority_task:make_task"}
    assert set(trials.latency_workload) == {"classify"} and trials.retimed_speedup.notna().all()
    assert (trials.heads_total < trials.heads_original).all() and (trials.accuracy_n == 60).all()
    assert len(read_pareto(root)) >= 1
    meta = json.loads((root / "results" / "sweep.json").read_text())
    assert meta["task"] == {"name": "majority_task:make_task"} and meta["teacher"]["primary_metric"] == "accuracy"

    capsys.readouterr()
    lines = (data / "valid.jsonl").read_text().splitlines()
    (data / "valid.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # the user's data changed under the sweep
    assert main(["sweep", "--resume", str(root), "--quiet"]) == 2  # a stored sweep is data: its import path is refused
    err = capsys.readouterr().err
    assert "by import path" in err and "--trust-sweep" in err and len(err.strip().splitlines()) == 1
    assert main(["sweep", "--resume", str(root), "--quiet", "--trust-sweep"]) == 2
    err = capsys.readouterr().err
    assert "data:" in err and "start a new sweep" in err and len(err.strip().splitlines()) == 1

    (data / "valid.jsonl").write_text("not json\n")
    assert main(["sweep", "--space", str(space), "--name", "maj2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "valid.jsonl:1: expected" in err and not (tmp_path / "runs" / "maj2").exists()


def test_the_causal_lm_task_runs_through_a_real_sweep(tmp_path, capsys):
    from raykd.cli import main

    space = write_space(tmp_path / "space.yaml", {
        "name": "lm", "task": {"name": "causal-lm", "max_new_tokens": 8, "eval_batch_size": 8}, "data": "synthetic:60",
        "storage": str(tmp_path / "runs"), "teacher": {"model": "tiny", "epochs": 1},
        "search": {"p_max": {"low": 0.3, "high": 0.5}}, "fixed": {**FIXED, "ffn_p_max": 0.3, "gqa_heads": "within-groups"},
        "num_samples": 1, **COMMON})
    assert main(["sweep", "--space", str(space), "--quiet"]) == 0
    root = tmp_path / "runs" / "lm"
    (row,) = read_trials(root).to_pylist()
    assert row["status"] == "complete" and row["task"] == "causal-lm" and row["latency_workload"] == "generate"
    assert row["heads_total"] < row["heads_original"] == 8 and row["ffn_channels_total"] < row["ffn_channels_original"]
    assert row["accuracy_n"] == 6 and row["retimed_speedup"] is not None
    teacher = json.loads((root / "teacher" / "config.json").read_text())
    assert teacher["model_kind"] == "raykd-causal-lm" and teacher["training"]["model"] == "tiny"
