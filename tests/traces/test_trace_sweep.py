"""A real sweep (Ray Tune + Optuna + Ray Train) that searches trace pruning strength beside a
structure ratio, on the tiny random Llama of the causal-LM tests: each trial's students learn
their own strength's pruned traces (shorter at the stronger one), and the results store records
the strength each trial sampled and the targets its workers built."""

from __future__ import annotations

import json

import pytest
from sweep_spaces import write_space

from raykd.results.store import read_trials

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_a_sweep_searches_trace_strength_and_each_trial_learns_its_own_pruned_traces(tmp_path):
    from raykd.cli import main

    space = write_space(tmp_path / "space.yaml", {
        "name": "traces", "data": "synthetic:60", "storage": str(tmp_path / "runs"),
        "task": {"name": "causal-lm", "output": "trace", "max_new_tokens": 8, "max_target_len": 512, "eval_batch_size": 8},
        "teacher": {"model": "tiny", "epochs": 1},
        "search": {"task.trace_strength": {"choices": [0.0, 1.0]}, "p_max": {"low": 0.3, "high": 0.5}},
        "fixed": {"p_min": 0.05, "rounds": 1, "epochs_per_round": 1, "steps_per_round": 3, "batch_size": 8, "lr": 0.001,
                  "calib_batches": 1, "latency_batch": 4, "latency_repeats": 2, "test_every_round": False},
        # each trial times its own generations (no latency table: a table prices a shape, not tokens)
        "speed": {"source": "measured", "retime_rounds": 0},
        "sampler": {"type": "random", "seed": 0}, "num_samples": 2,  # seed 0 samples both strengths
        "resources": {"workers": 1, "cpus_per_worker": 1, "concurrent_trials": 1}})
    assert main(["sweep", "--space", str(space), "--quiet"]) == 0
    root = tmp_path / "runs" / "traces"
    rows = read_trials(root).to_pylist()
    assert len(rows) == 2 and {r["status"] for r in rows} == {"complete"}, [(r["status"], r["error"]) for r in rows]
    by = {r["hp_task.trace_strength"]: r for r in rows}
    assert set(by) == {0.0, 1.0}, "the seeded random sampler must sample both strengths"
    for strength, row in by.items():  # the strength the workers pruned with is the one the trial sampled
        assert row["targets_strength"] == strength and row["targets_rejected"] == 0
        assert row["targets_derived"] == 48 and row["targets_pruned"] == (48 if strength else 0)
    assert by[1.0]["targets_tokens_mean"] < 0.5 * by[0.0]["targets_tokens_mean"]
    assert by[0.0]["latency_workload"] == "generate-e2e" and by[0.0]["heads_total"] < by[0.0]["heads_original"]
    meta = json.loads((root / "results" / "sweep.json").read_text())
    assert meta["task"] == {"name": "causal-lm", "output": "trace", "max_new_tokens": 8, "max_target_len": 512,
                            "eval_batch_size": 8}
