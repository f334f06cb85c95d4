"""Non-inferiority choice: the fastest student whose paired 95% interval lies above -M points, from
a table (raykd.results.noninferiority), a stored sweep (Sweep.query), `raykd pareto --not-worse-by`
and `export --pick not-worse-by=M`."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sweep_factory import TEACHER, TRIALS, make_row, meta

from raykd.results.noninferiority import diff_low, fastest_non_inferior, non_inferior_mask
from raykd.stats import accuracy_fields, accuracy_interval, pack_correct, paired_difference

N = 1000
TEACHER_FLAGS = [True] * 812 + [False] * 188  # the sweep factory's teacher: 0.812
# trial: (lost, gained) against the teacher, matching TRIALS' accuracies on 1,000 problems; the paired
# 95% lower bounds (points): t0 -0.70, t1 -1.43, t2 -3.32, t3 -6.73, t4 -4.42, t5 -13.30
LOST_GAINED = {"t0": (3, 1), "t1": (9, 2), "t2": (26, 4), "t3": (56, 4), "t4": (34, 2), "t5": (118, 6)}


def _student(lost: int, gained: int) -> list[bool]:
    flags = list(TEACHER_FLAGS)
    for i in range(lost):
        flags[i] = False
    for i in range(gained):
        flags[812 + i] = True
    return flags


def _teacher_meta() -> dict:
    return {**TEACHER, "metrics": {"valid": {**accuracy_interval(TEACHER_FLAGS), "correct_bits": pack_correct(TEACHER_FLAGS)}}}


def _rows(with_intervals: set[str]) -> list[dict]:
    rows = []
    for i, (tid, spec) in enumerate(TRIALS.items()):
        status, acc, sp, params, alpha, n, tau, p_max, imp = spec
        row = make_row("ni", tid, status, acc, sp, params, alpha, n, tau, p_max, imp, finished=i)
        if tid in LOST_GAINED:
            flags = _student(*LOST_GAINED[tid])
            assert sum(flags) / N == pytest.approx(acc)
            fields = accuracy_fields("accuracy", {**accuracy_interval(flags), "correct_bits": pack_correct(flags)},
                                     _teacher_meta()["metrics"]["valid"])
            if tid not in with_intervals:  # an older row: bits and McNemar only, no stored interval
                fields = {k: v for k, v in fields.items() if "_diff" not in k}
            row.update(fields)
        rows.append(row)
    return rows


def test_lower_bounds_come_from_stored_columns_or_from_the_bits():
    df = pd.DataFrame(_rows(with_intervals={"t0", "t1"}))
    low = diff_low(df, _teacher_meta())
    expected = {tid: paired_difference(TEACHER_FLAGS, _student(*lg)).low for tid, lg in LOST_GAINED.items()}
    for tid, value in zip(df["trial_id"], low):
        if tid in expected:
            assert value == pytest.approx(expected[tid], abs=1e-12)
        else:
            assert math.isnan(value)  # pruned/failed rows have no bits here: never judged
    without_teacher = diff_low(df, None)  # only the stored intervals are usable
    assert np.isfinite(without_teacher).sum() == 2


@pytest.mark.parametrize("margin, pick", [(2, "t1"), (3.5, "t2"), (5, "t2"), (7, "t3"), (0.5, None)])
def test_fastest_non_inferior_by_margin(margin, pick):
    df = pd.DataFrame(_rows(with_intervals={"t0", "t2"}))
    row = fastest_non_inferior(df, margin, _teacher_meta())
    assert (None if row is None else row["trial_id"]) == pick
    mask = non_inferior_mask(df, margin, _teacher_meta())
    assert "t6" not in set(df["trial_id"][mask])  # pruned rows have no interval


def test_margin_is_points_and_must_be_sane():
    df = pd.DataFrame(_rows(with_intervals=set(LOST_GAINED)))
    with pytest.raises(ValueError):
        non_inferior_mask(df, -1)
    with pytest.raises(ValueError):
        non_inferior_mask(df, 100)
    # 2 points, not 0.02: with 0.02 (points) nothing is non-inferior here
    assert fastest_non_inferior(df, 0.02) is None and fastest_non_inferior(df, 2)["trial_id"] == "t1"


def _sweep(tmp_path, with_intervals=frozenset({"t0", "t1"})):
    from raykd.results import update_pareto, write_sweep_meta, write_trial

    sweep = tmp_path / "ni"
    write_sweep_meta(sweep, meta("ni", teacher=_teacher_meta()))
    for row in _rows(set(with_intervals)):
        write_trial(sweep, row)
    update_pareto(sweep)
    return sweep


def test_sweep_query_and_export_pick_use_the_same_criterion(tmp_path):
    from raykd.analysis import NoCompleteTrialError, open_sweep, parse_pick
    from raykd.errors import RaykdInputError

    sw = open_sweep(_sweep(tmp_path))
    assert sw.query(not_worse_by=2)["trial_id"] == "t1"
    assert sw.query(not_worse_by=7)["trial_id"] == "t3"
    assert sw.query(**parse_pick("not-worse-by=3.5"))["trial_id"] == "t2"
    assert sw.query(**parse_pick("not-worse-by=7,max-params=1000000"))["trial_id"] == "t3"
    # at half a point even the best trial's interval (t0: -0.70 pt) reaches below the margin
    with pytest.raises(NoCompleteTrialError, match="non-inferiority at 0.5 pt"):
        sw.query(not_worse_by=0.5)
    with pytest.raises(RaykdInputError, match="not-worse-by"):
        parse_pick("not-worse-by=two")
    with pytest.raises(RaykdInputError, match="points"):
        sw.query(not_worse_by=150)


def test_sweep_without_paired_results_is_refused(tmp_path):
    from sweep_factory import make_sweep

    from raykd.analysis import open_sweep
    from raykd.errors import RaykdInputError

    with pytest.raises(RaykdInputError, match="records no paired intervals"):
        open_sweep(make_sweep(tmp_path, "old", study=False)).query(not_worse_by=2)


def test_pareto_not_worse_by_picks_and_reports(tmp_path, capsys):
    import json

    from raykd.cli import main

    sweep = _sweep(tmp_path)
    assert main(["pareto", str(sweep), "--not-worse-by", "2"]) == 0
    out = capsys.readouterr().out
    assert "pick         trial t1" in out and "non-inferior at 2 pt" in out
    assert main(["pareto", str(sweep), "--not-worse-by", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["pick"]["trial_id"] == "t1" and report["not_worse_by"] == 2
    assert main(["pareto", str(sweep), "--not-worse-by", "0.5"]) == 0
    assert "pick         none" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["-1", "100", "nan", "two"])
def test_pareto_not_worse_by_bad_value_is_one_line_exit_2(tmp_path, capsys, value):
    from raykd.cli import main

    sweep = _sweep(tmp_path)
    assert main(["pareto", str(sweep), "--not-worse-by", value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("raykd: error:") and "--not-worse-by" in err[-1]


def test_the_pick_line_gives_the_re_timed_speed_where_the_sweep_has_one(tmp_path, capsys):
    """The front shows re-timed speeds; the pick line (ranked by the objective's own speedup)
    names the re-timed figure too, so the two lines never disagree silently."""
    from raykd.cli import main
    from raykd.results import update_pareto, write_sweep_meta, write_trial

    sweep = tmp_path / "rt"
    write_sweep_meta(sweep, meta("rt", teacher=_teacher_meta()))
    for row in _rows({"t0", "t1"}):
        if row["trial_id"] == "t1":
            row.update({"retimed_speedup": 1.432, "retimed_low": 1.401, "retimed_high": 1.466})
        write_trial(sweep, row)
    update_pareto(sweep)
    assert main(["pareto", str(sweep), "--not-worse-by", "2"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("pick"))
    assert "trial t1" in line and "(re-timed side by side: 1.43x [1.40-1.47])" in line
