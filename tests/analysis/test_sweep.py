"""raykd.analysis on hand-built sweeps: open, front, hypervolume, queries, rounds, importance,
comparison, plots, bad input."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sweep_factory import (
    KNOWN_FRONT,
    KNOWN_HV,
    TEACHER,
    TRIALS,
    make_row,
    make_sweep,
    meta,
)

from raykd.analysis import (
    PAPER_LABEL,
    EmptySweepError,
    NoCompleteTrialError,
    NotASweepError,
    UnknownObjectiveError,
    compare_sweeps,
    open_sweep,
    paper_dataset,
    paper_points,
    plot_front,
    plot_fronts,
    plot_rounds,
)
from raykd.errors import RaykdInputError
from raykd.results import write_sweep_meta, write_trial

REPO = Path(__file__).resolve().parents[2]


def test_open_sweep_gives_one_row_per_trial_with_derived_columns(demo_sweep):
    sw = open_sweep(demo_sweep)
    assert sw.name == "demo" and sw.counts == {"complete": 6, "pruned": 1, "failed": 1}
    assert len(sw.df) == sw.table.num_rows == len(TRIALS)
    assert set(sw.df.loc[sw.df["on_front"], "trial_id"]) == KNOWN_FRONT
    drops = sw.df.set_index("trial_id")["accuracy_drop"]
    assert drops["t0"] == pytest.approx(0.2) and drops["t1"] == pytest.approx(0.7) and pd.isna(drops["t7"])
    assert sw.hp_columns == ["hp_alpha", "hp_importance", "hp_n", "hp_p_max", "hp_tau"]
    assert sw.hyperparameters("t3") == {"alpha": 0.2, "importance": "random", "n": 2.0, "p_max": 0.5, "tau": 1.5}
    assert sw.chain_config("t3")["p_min"] == 0.05
    assert open_sweep(sw) is sw


def test_front_and_hypervolume(demo_sweep):
    sw = open_sweep(demo_sweep)
    assert sw.front()["trial_id"].tolist() == ["t0", "t1", "t2", "t3"]  # best accuracy first
    assert sw.hypervolume() == pytest.approx(KNOWN_HV)
    assert sw.reference_point() == {"accuracy": 0.0, "speedup": 1.0}
    assert sw.hypervolume(reference={"speedup": 1.2}) == pytest.approx(0.790 * 0.10 + 0.760 * 0.15)
    # accuracy vs params: the smallest complete trial t5 joins, t1 / t2 / t3 stay, t4 drops out
    assert set(sw.front("accuracy:max,params:min")["trial_id"]) == {"t0", "t1", "t2", "t3", "t5"}
    assert sw.reference_point("accuracy:max,params:min") == {"accuracy": 0.0, "params": TEACHER["params"]}


def test_queries(demo_sweep):
    sw = open_sweep(demo_sweep)
    assert sw.query()["trial_id"] == "t0"  # fastest within 0.5 pt: only t0 (drop 0.2)
    assert sw.query(max_drop=1.0)["trial_id"] == "t1"
    assert sw.query(max_drop=6.0)["trial_id"] == "t3"  # pruned t6 (faster, more accurate) never counts
    assert sw.query(min_speedup=1.2)["trial_id"] == "t5"  # smallest (params) with speedup >= 1.2x
    assert sw.query(min_speedup=1.2, max_drop=3.0)["trial_id"] == "t2"  # fastest with both
    assert sw.query(min_speedup=1.2, by="accuracy:max")["trial_id"] == "t2"
    assert sw.query(max_params=1_000_000, max_drop=None)["trial_id"] == "t3"
    with pytest.raises(NoCompleteTrialError, match=r"accuracy drop <= 0.1 pt.*best accuracy drop .* is 0.2"):
        sw.query(max_drop=0.1)
    with pytest.raises(RaykdInputError, match="max_drop must be >= 0"):
        sw.query(max_drop=-1)
    with pytest.raises(UnknownObjectiveError):
        sw.query(by="size:min")


def test_query_without_teacher_accuracy(tmp_path):
    root = tmp_path / "s"
    m = meta()
    m["teacher"] = {"dir": "x", "accuracy": None}
    write_sweep_meta(root, m)
    write_trial(root, make_row("demo", "t0", "complete", 0.8, 1.2, 10))
    sw = open_sweep(root)
    with pytest.raises(RaykdInputError, match="no teacher accuracy"):
        sw.query()
    assert sw.query(min_accuracy=0.5)["trial_id"] == "t0"


def test_rounds(demo_sweep):
    sw = open_sweep(demo_sweep)
    r = sw.rounds("t2")
    assert r["round"].tolist() == [1, 2]
    assert list(r.columns[:5]) == ["round", "ratio", "accuracy", "speedup", "ideal_speedup"]
    assert r["accuracy"].iloc[-1] == pytest.approx(0.79) and r["speedup"].iloc[-1] == pytest.approx(1.30)
    assert sw.rounds("t7").empty  # failed: no rounds
    with pytest.raises(RaykdInputError, match=r"no trial 'nope' in sweep demo \(trials: t0, t1"):
        sw.rounds("nope")


def test_importance_from_the_study_and_from_the_results(demo_sweep):
    sw = open_sweep(demo_sweep)
    assert len(sw.study().trials) == len(TRIALS)
    acc = sw.importance("accuracy")
    assert set(acc.index) == {"alpha", "n", "tau", "p_max", "importance"}
    assert acc.sum() == pytest.approx(1.0) and (acc >= 0).all()
    assert list(acc.values) == sorted(acc.values, reverse=True)
    both = sw.importance()
    assert list(both.columns) == ["accuracy", "speedup"]
    assert both["accuracy"].to_dict() == pytest.approx(acc.to_dict())
    # metrics that are not study objectives come from the Parquet results
    params = sw.importance("params")
    assert params.sum() == pytest.approx(1.0) and params.name == "params"
    ped = sw.importance("speedup", evaluator="ped-anova")
    assert ped.sum() == pytest.approx(1.0)
    with pytest.raises(RaykdInputError, match="needs at least 10 complete trials .* has 6"):
        sw.importance("accuracy", min_trials=10)
    with pytest.raises(UnknownObjectiveError):
        sw.importance("nope")
    with pytest.raises(RaykdInputError, match="known objectives of the Optuna study: accuracy, speedup"):
        sw.importance("params", source="study")


def test_importance_of_an_objective_that_never_varies_is_zero(tmp_path):
    trials = {tid: (s, a, 1.25 if s == "complete" else sp, p, *rest) for tid, (s, a, sp, p, *rest) in TRIALS.items()}
    sw = open_sweep(make_sweep(tmp_path, "flat", trials=trials, study=False))
    imp = sw.importance("speedup")  # no journal -> from the results
    assert (imp == 0.0).all() and len(imp) == 5
    with pytest.raises(RaykdInputError, match="has no Optuna study"):
        sw.importance("speedup", source="study")


def test_compare_sweeps(tmp_path, demo_sweep):
    better = {**TRIALS, "t8": ("complete", 0.811, 1.6, 700_000, 0.5, 1.0, 2.0, 0.5, "combined")}
    other = make_sweep(tmp_path / "b", "demo", trials=better, study=False)
    cmp = compare_sweeps([demo_sweep, other])
    assert set(cmp.fronts) == {"demo", "demo#2"}
    assert cmp.hypervolumes["demo"] == pytest.approx(KNOWN_HV)
    assert cmp.hypervolumes["demo#2"] == pytest.approx(0.811 * 0.6)  # t8 dominates the old front
    assert cmp.fronts["demo#2"]["trial_id"].tolist() == ["t8"]
    assert set(cmp.df["sweep"]) == {"demo", "demo#2"} and len(cmp.df) == 2 * len(TRIALS) + 1
    s = cmp.summary
    assert s.loc["demo#2", "front"] == 1 and s.loc["demo", "complete"] == 6
    assert cmp.reference == {"accuracy": 0.0, "speedup": 1.0}


def test_bad_input_is_one_clear_error(tmp_path):
    with pytest.raises(NotASweepError, match="is not a raykd sweep"):
        open_sweep(tmp_path)
    root = tmp_path / "empty"
    write_sweep_meta(root, meta())
    with pytest.raises(EmptySweepError, match="has no trial rows yet"):
        open_sweep(root)
    assert len(open_sweep(root, allow_empty=True).df) == 0
    for tid in ("a", "b"):
        write_trial(root, make_row("demo", tid, "failed", None, None, None))
    write_trial(root, make_row("demo", "c", "pruned", 0.5, 1.1, 100))
    sw = open_sweep(root)
    with pytest.raises(NoCompleteTrialError,
                       match=r"no complete trial \(2 failed, 1 pruned; first error: RuntimeError: CUDA out of memory.*the Pareto front is empty"):
        sw.front()
    assert sw.hypervolume() == 0.0
    with pytest.raises(NoCompleteTrialError, match="no complete trial"):
        sw.query()
    with pytest.raises(UnknownObjectiveError, match=r"'latency' \(known: .*latency_ms"):
        sw.front("accuracy:max,latency:min")


def test_paper_points_match_the_quoted_table():
    assert paper_dataset("asdiv-a:../shared/data/asdiv-a/train.json") == "asdiv-a"
    assert paper_dataset("../shared/data/Math23k") == "math23k"
    assert paper_dataset("synthetic:800") is None and paper_dataset("svamp:x.json") is None
    p20 = next(p for p in paper_points("asdiv-a:x") if p.ratio == 0.20)
    assert p20.speedup == pytest.approx(1.172) and p20.accuracy_pct == 86.1
    assert [p.speedup for p in paper_points("math23k:x")] == pytest.approx([1.0, 1.184, 1.227, 1.275])


def _legend(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_plot_front_draws_every_series_and_writes_a_png(tmp_path, demo_sweep):
    png = tmp_path / "plots" / "front.png"
    fig = plot_front(demo_sweep, png, max_drop=0.5)
    assert png.stat().st_size > 20_000 and png.read_bytes()[:4] == b"\x89PNG"
    labels = _legend(fig)
    assert "Pareto front (4)" in labels and "other complete trials (2)" in labels
    assert any(lab.startswith("failed: 1") for lab in labels) and any(lab.startswith("pruned early (1") for lab in labels)
    assert any(lab.startswith("teacher (81.2%, 1.00×)") for lab in labels)
    assert any(lab.startswith("pick: trial t0") for lab in labels)
    assert not any(PAPER_LABEL in lab for lab in labels)  # synthetic data: no paper points
    ax = fig.axes[0]
    assert "accuracy (%)" in ax.get_ylabel() and "speedup" in ax.get_xlabel()
    assert "hypervolume 0.3535" in ax.get_title() and "demo" in ax.get_title()


def test_plot_front_shows_the_paper_points_for_asdiv_a(tmp_path):
    sweep = make_sweep(tmp_path, "asdiv", data="asdiv-a:../shared/data/asdiv-a/train.json", study=False)
    fig = open_sweep(sweep).plot_front()
    labels = _legend(fig)
    assert f"{PAPER_LABEL}, ASDiv-A test" in labels
    paper = next(c for c in fig.axes[0].collections if c.get_label().startswith(PAPER_LABEL))
    assert paper.get_offsets()[:, 0].tolist() == pytest.approx([1.0, 1.172, 1.213, 1.265])
    # other objectives: params on x, no paper series
    fig2 = plot_front(sweep, objectives="accuracy:max,params:min")
    assert "parameters" in fig2.axes[0].get_xlabel() and not any(PAPER_LABEL in lab for lab in _legend(fig2))


def test_plot_rounds_and_plot_fronts(tmp_path, demo_sweep):
    fig = plot_rounds(demo_sweep, "t2", tmp_path / "rounds.png")
    assert (tmp_path / "rounds.png").stat().st_size > 10_000
    acc_ax, sp_ax = fig.axes
    line = acc_ax.get_lines()[0]
    assert line.get_xdata().tolist() == [0, 1, 2]
    assert line.get_ydata()[0] == pytest.approx(81.2) and line.get_ydata()[-1] == pytest.approx(79.0)
    assert sp_ax.get_lines()[0].get_ydata().tolist() == pytest.approx([1.0, 1.15, 1.30])
    fig = plot_fronts(compare_sweeps([demo_sweep]), tmp_path / "cmp.png")
    assert (tmp_path / "cmp.png").is_file() and "demo: front 4" in _legend(fig)[0]


def test_analysis_imports_without_ray_or_torch():
    code = ("import sys, raykd.analysis, raykd.results, raykd.cli.pareto, raykd.cli.export\n"
            "bad = [m for m in ('ray', 'torch') if m in sys.modules]\n"
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr


def test_reading_a_sweep_copied_elsewhere(tmp_path, demo_sweep):
    """A sweep directory is self-contained: copied (e.g. downloaded from a bucket), it still opens."""
    copy = tmp_path / "copy"
    shutil.copytree(demo_sweep, copy)
    sw = open_sweep(copy)
    assert sw.hypervolume() == pytest.approx(KNOWN_HV) and sw.study().study_name == "raykd-demo"


def test_ped_anova_importance_follows_the_objective_direction(tmp_path):
    """PED-ANOVA ranks what makes the target LOW; raykd flips max-mode objectives so the answer is
    'what makes speedup high'. Here high speedup comes from alpha, low speedup from tau."""
    import numpy as np

    root = tmp_path / "s"
    write_sweep_meta(root, meta())
    rng = np.random.default_rng(0)
    for i in range(60):
        a, b = float(rng.uniform(0, 1)), float(rng.uniform(0, 1))
        speedup = 1.5 + 2 * max(a - 0.7, 0) - 2 * max(b - 0.7, 0)
        write_trial(root, make_row("demo", f"t{i:02d}", "complete", 0.8, speedup, 1000, alpha=a, tau=1 + 3 * b))
    sw = open_sweep(root)
    high = sw.importance("speedup", evaluator="ped-anova")
    low = sw.importance("speedup:min", evaluator="ped-anova")
    assert high.index[0] == "alpha" and low.index[0] == "tau"
    fanova = sw.importance("speedup")  # variance-based: both matter, direction-free
    assert set(fanova.index[:2]) == {"alpha", "tau"}


def test_query_not_worse_at_keeps_only_drops_the_paired_test_does_not_flag(tmp_path, capsys):
    """t3 (the fastest on the front) lost significantly many problems, t2 did not: the pick by
    `not_worse_at` is t2, where "max_drop" alone cannot tell them apart by points."""
    from sweep_factory import TRIALS, make_row

    from raykd.cli import main
    from raykd.results.store import update_pareto, write_trial

    sweep = make_sweep(tmp_path, "paired", study=False)
    paired = {"t0": (0.9, 2, 2), "t1": (0.6, 3, 2), "t2": (0.12, 6, 1), "t3": (0.003, 14, 2)}
    for i, (tid, (p, lost, gained)) in enumerate(paired.items()):
        status, acc, sp, params, alpha, n, tau, p_max, imp = TRIALS[tid]
        row = make_row("paired", tid, status, acc, sp, params, alpha, n, tau, p_max, imp, finished=i)
        write_trial(sweep, {**row, "accuracy_n": 500, "accuracy_ci_low": acc - 0.03, "accuracy_ci_high": acc + 0.03,
                            "accuracy_p_vs_teacher": p, "accuracy_lost": lost, "accuracy_gained": gained})
    update_pareto(sweep)
    sw = open_sweep(sweep)
    assert sw.query(max_drop=6)["trial_id"] == "t3"
    assert sw.query(max_drop=None, not_worse_at=0.05)["trial_id"] == "t2"
    assert sw.query(max_drop=None, not_worse_at=0.5)["trial_id"] == "t1"
    with pytest.raises(RaykdInputError, match="significance level"):
        sw.query(max_drop=None, not_worse_at=1.5)
    assert main(["pareto", str(sweep), "--not-worse-at", "0.05"]) == 0
    out = capsys.readouterr().out
    assert "pick         trial t2 — fastest no significant drop at 0.05" in out
    assert "95% CI" in out and "(p 0.003)" in out  # the readable view: the drop with its McNemar p
    with pytest.raises(RaykdInputError, match="records no paired tests"):
        open_sweep(make_sweep(tmp_path, "old", study=False)).query(max_drop=None, not_worse_at=0.05)
