"""`raykd cv --from RUN --trial ID` runs the trial's own task: the sweep's task with the trial's
sampled `task.<setting>` values, made by the function the sweep's workers use
(`SweepSpace.task_for`). A trace sweep's trial at pruning strength 1 is cross-validated on
targets pruned at strength 1 (the fold's chain fingerprints that task), the task is recorded in
cv.json, and a CV directory made for another strength is refused in one line, nothing changed.

The sweep is written with the results store's own writer (no Ray); the CV trains a tiny causal-LM
teacher and one chain round on one fold of `synthetic:40`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_bad_input import assert_refused_changing_nothing

from raykd.cli import main
from raykd.results.store import write_sweep_meta, write_trial

CV = ["--folds", "2", "--valid-fraction", "0.25", "--threads", "1", "--quiet", "--fold-limit", "1"]
CHAIN = {"rounds": 1, "epochs_per_round": 1, "steps_per_round": 2, "batch_size": 8, "calib_batches": 1,
         "calib_batch_size": 8, "latency_repeats": 1, "latency_batch": 2, "p_min": 0.05, "p_max": 0.25,
         "test_every_round": False}
TASK = {"name": "causal-lm", "output": "trace", "max_new_tokens": 8, "max_target_len": 512, "eval_batch_size": 16}
SPACE = {"name": "s", "task": TASK, "data": "synthetic:40", "teacher": {"model": "tiny", "epochs": 1, "max_steps": 2},
         "search": {"task.trace_strength": {"choices": [0.0, 1.0]}, "alpha": {"low": 0.0, "high": 1.0}},
         "fixed": CHAIN, "seed": 3, "num_samples": 1, "speed": {"source": "measured"}}


def trace_sweep(root: Path, strength: float, name: str = "s") -> Path:
    """A stored trace sweep (results store's writer) whose one trial t1 sampled `strength`."""
    sweep = root / name
    write_sweep_meta(sweep, {"name": name, "space_raw": SPACE, "teacher": {"dir": str(sweep / "teacher"), "accuracy": 0.1},
                             "data": SPACE["data"], "seed": SPACE["seed"],
                             "objectives": [{"metric": "accuracy", "mode": "max"}, {"metric": "speedup", "mode": "max"}]})
    write_trial(sweep, {"sweep": name, "trial_id": "t1", "status": "complete", "hp_task.trace_strength": strength,
                        "hp_alpha": 0.25, "chain_config_json": {**CHAIN, "alpha": 0.25}, "accuracy": 0.1, "speedup": 1.1})
    return sweep


@pytest.mark.slow
def test_cv_of_a_trace_trial_runs_and_records_the_trials_strength_and_refuses_another(tmp_path, capsys):
    from raykd.data import load_splits
    from raykd.data.folds import fold_splits
    from raykd.task.causal_lm_plugin import CausalLMPlugin
    from raykd.task.hf_io import HFModelIO

    out = tmp_path / "cv"
    sweep = trace_sweep(tmp_path, 1.0)
    assert main(["cv", "--from", str(sweep), "--trial", "t1", *CV, "--out", str(out)]) == 0
    settings = json.loads((out / "cv.json").read_text())["settings"]
    assert settings["task"] == {**TASK, "trace_strength": 1.0}  # the trial's sampled value, not the space's default
    assert settings["teacher"] == {"settings": {"model": "tiny", "epochs": 1, "max_steps": 2}}

    # the fold's chain ran the task at strength 1: its fingerprint is that task's over the fold's splits
    state = json.loads((out / "fold-01" / "chain" / "round-01" / "state.json").read_text())
    problems = [p for split in ("train", "valid", "test") for p in load_splits("synthetic:40", seed=3).get(split, [])]
    splits = fold_splits(problems, 2, 0, seed=3, valid_fraction=0.25)
    _model, tokenizer, _io = HFModelIO.open(out / "fold-01" / "teacher")
    pruned = CausalLMPlugin(**{k: v for k, v in TASK.items() if k != "name"}, trace_strength=1.0).task(tokenizer, splits)
    unpruned = CausalLMPlugin(**{k: v for k, v in TASK.items() if k != "name"}).task(tokenizer, splits)
    assert state["fingerprint"]["data"] == pruned.fingerprint() != unpruned.fingerprint()
    assert pruned.target_record("train")["pruned"] > 0  # strength 1 changed the targets it trained on
    fold = json.loads((out / "fold-01" / "fold.json").read_text())
    assert fold["n"] == len(splits["test"]) and len(fold["rounds"]) == 1

    # the same --out for a trial at another strength: another run, one line, nothing changed
    other = trace_sweep(tmp_path, 0.0, name="s0")
    err = assert_refused_changing_nothing(capsys, tmp_path, ["cv", "--from", str(other), "--trial", "t1", *CV,
                                                             "--out", str(out)], "cannot be resumed")
    assert "task" in err


def test_a_trial_without_its_sampled_task_value_is_refused(tmp_path, capsys):
    sweep = tmp_path / "s"
    write_sweep_meta(sweep, {"name": "s", "space_raw": SPACE, "teacher": {"dir": str(sweep / "teacher")},
                             "data": SPACE["data"], "seed": 3})
    write_trial(sweep, {"sweep": "s", "trial_id": "t1", "status": "complete", "hp_alpha": 0.25,
                        "chain_config_json": {**CHAIN, "alpha": 0.25}})
    assert_refused_changing_nothing(capsys, tmp_path, ["cv", "--from", str(sweep), "--trial", "t1", *CV,
                                                       "--out", str(tmp_path / "cv")],
                                    "trial 't1' records no value for task.trace_strength")
