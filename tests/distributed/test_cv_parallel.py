"""`raykd cv --parallel`: the folds as concurrent Ray tasks on a real local Ray (2 CPUs), pooled
exactly as the sequential path pools them: the same per-problem results for the teacher and every
round (speed figures are timings and may differ), resumable the same way, and a fold that could
never be placed refused before anything runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from raykd.cli import main

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TINY = ["--data", "synthetic:40", "--folds", "2", "--valid-fraction", "0.25", "--epochs", "1", "--threads", "1", "--quiet",
        "--set", "rounds=1", "--set", "epochs_per_round=1", "--set", "calib_batches=1", "--set", "latency_repeats=1",
        "--set", "latency_batch=2"]
TIMINGS = ("speedup", "speedup_min", "speedup_max", "measured_speedup", "round_s")


def _mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*")) if p.is_file()}


def _without_timings(obj):
    if isinstance(obj, dict):
        return {k: _without_timings(v) for k, v in obj.items() if k not in TIMINGS}
    if isinstance(obj, list):
        return [_without_timings(v) for v in obj]
    return obj


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def both_runs(local_ray, tmp_path_factory):
    """The same tiny CV run twice: folds in parallel on Ray, and one after another here."""
    root = tmp_path_factory.mktemp("cv")
    assert main(["cv", *TINY, "--out", str(root / "parallel"), "--parallel", "--cpus-per-fold", "1"]) == 0
    assert main(["cv", *TINY, "--out", str(root / "sequential")]) == 0
    return root / "parallel", root / "sequential"


def test_parallel_folds_pool_the_same_per_problem_results_as_sequential_ones(both_runs):
    par, seq = both_runs
    for fold in ("fold-01", "fold-02"):
        a = json.loads((par / fold / "fold.json").read_text())
        b = json.loads((seq / fold / "fold.json").read_text())
        assert a["problem_ids"] == b["problem_ids"]
        assert a["teacher_correct"] == b["teacher_correct"]  # the fold's teacher, problem by problem
        assert [r["test_accuracy_correct"] for r in a["rounds"]] == [r["test_accuracy_correct"] for r in b["rounds"]]
        assert _without_timings(a) == _without_timings(b)
    pa, pb = (json.loads((d / "pooled.json").read_text()) for d in (par, seq))
    assert pa["n"] == 40 and _without_timings(pa) == _without_timings(pb)  # accuracy, intervals, McNemar, verdicts
    assert json.loads((par / "cv.json").read_text()) == json.loads((seq / "cv.json").read_text())


def test_a_parallel_run_resumes_like_a_sequential_one(both_runs, tmp_path, capsys):
    par, _ = both_runs
    copy = tmp_path / "copy"
    shutil.copytree(par, copy)
    (copy / "fold-02" / "fold.json").unlink()  # killed after fold 2's chain, before its record
    before = _mtimes(copy)
    argv = [a for a in TINY if a != "--quiet"]
    assert main(["cv", *argv, "--out", str(copy), "--parallel", "--cpus-per-fold", "1"]) == 0
    console = capsys.readouterr().out
    assert "fold 1: done earlier" in console and "1 fold(s) submitted to Ray" in console
    after = _mtimes(copy)
    assert {k: v for k, v in after.items() if k.startswith("fold-01")} == \
        {k: v for k, v in before.items() if k.startswith("fold-01")}  # fold 1 never resubmitted
    assert after["fold-02/teacher/model.safetensors"] == before["fold-02/teacher/model.safetensors"]  # not retrained
    assert after["fold-02/chain/round-01/state.json"] == before["fold-02/chain/round-01/state.json"]  # chain resumed
    assert json.loads((copy / "fold-02" / "fold.json").read_text())["teacher_correct"] == \
        json.loads((par / "fold-02" / "fold.json").read_text())["teacher_correct"]


def test_a_fold_larger_than_the_cluster_is_refused_before_anything_runs(local_ray, tmp_path, capsys):
    out = tmp_path / "cv"
    assert main(["cv", *TINY, "--out", str(out), "--parallel", "--cpus-per-fold", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("raykd: error: --cpus-per-fold 3: this machine's Ray has 2 CPU(s)")
    assert not (out / "fold-01").exists()
