"""Pareto front and hypervolume on hand-built result tables with known answers."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sweep_factory import KNOWN_FRONT, KNOWN_HV, TEACHER, TRIALS, make_row

from raykd.errors import RaykdInputError
from raykd.results import (
    UnknownObjectiveError,
    default_reference,
    hypervolume,
    pareto_mask,
    parse_objectives,
    resolve_reference,
)

AS = [("accuracy", "max"), ("speedup", "max")]


def table(points, status="complete", **cols) -> pd.DataFrame:
    """Rows (accuracy, speedup[, params]) with one status (or a list of statuses)."""
    statuses = status if isinstance(status, list) else [status] * len(points)
    rows = []
    for i, (p, s) in enumerate(zip(points, statuses)):
        row = {"trial_id": f"x{i}", "status": s, "accuracy": p[0], "speedup": p[1]}
        if len(p) > 2:
            row["params"] = p[2]
        rows.append(row)
    df = pd.DataFrame(rows)
    for k, v in cols.items():
        df[k] = v
    return df


def front_ids(df, objectives=AS) -> set[str]:
    return set(df["trial_id"][pareto_mask(df, objectives)])


def factory_df() -> pd.DataFrame:
    return pd.DataFrame([make_row("demo", tid, s, a, sp, p) for tid, (s, a, sp, p, *_r) in TRIALS.items()])


def test_known_front_and_hypervolume_of_the_factory_rows():
    df = factory_df()
    assert front_ids(df) == KNOWN_FRONT  # t4, t5 dominated; t6 pruned; t7 failed
    assert hypervolume(df, AS) == pytest.approx(KNOWN_HV, abs=1e-12)
    assert hypervolume(df, AS, {"accuracy": 0.0, "speedup": 1.0}) == pytest.approx(0.3535)


def test_duplicated_points_are_both_on_the_front_and_add_no_volume():
    df = table([(0.8, 1.2), (0.8, 1.2), (0.7, 1.3), (0.6, 1.1)])
    assert front_ids(df) == {"x0", "x1", "x2"}
    single = table([(0.8, 1.2), (0.7, 1.3)])
    assert hypervolume(df, AS) == pytest.approx(hypervolume(single, AS))
    assert hypervolume(single, AS) == pytest.approx(0.8 * 0.2 + 0.7 * 0.1)


def test_a_tie_in_one_objective_is_dominated_by_the_better_other():
    assert front_ids(table([(0.8, 1.2), (0.8, 1.1)])) == {"x0"}
    assert front_ids(table([(0.8, 1.2), (0.9, 1.2)])) == {"x1"}
    # a tie in both objectives with different other columns: both kept
    assert front_ids(table([(0.8, 1.2, 100), (0.8, 1.2, 200)])) == {"x0", "x1"}


def test_nan_and_non_complete_rows_are_never_on_the_front_nor_in_the_volume():
    df = table([(0.9, 2.0), (0.95, 2.5), (math.nan, 3.0), (0.99, math.nan), (0.5, 1.5), (0.4, float("inf"))],
               status=["failed", "pruned", "complete", "complete", "complete", "complete"])
    assert front_ids(df) == {"x4"}
    assert hypervolume(df, AS) == pytest.approx(0.5 * 0.5)


def test_no_eligible_row_gives_an_empty_front_and_zero_volume():
    df = table([(0.9, 1.5), (math.nan, math.nan)], status=["failed", "complete"])
    assert not pareto_mask(df, AS).any()
    assert hypervolume(df, AS) == 0.0
    assert pareto_mask(df.iloc[0:0], AS).shape == (0,)


def test_min_mode_objective_accuracy_vs_params():
    objs = [("accuracy", "max"), ("params", "min")]
    df = table([(0.80, 1.0, 1000), (0.78, 1.0, 800), (0.78, 1.0, 900), (0.70, 1.0, 800), (0.81, 1.0, 1200)])
    assert front_ids(df, objs) == {"x0", "x1", "x4"}
    # reference: accuracy 0, params at the teacher's 1200 -> x4 adds nothing (params == reference)
    hv = hypervolume(df, objs, teacher={"params": 1200})
    assert hv == pytest.approx(0.78 * (1200 - 800) + (0.80 - 0.78) * (1200 - 1000))
    # without a teacher figure the reference is the worst params seen among complete rows (1200 too)
    assert default_reference(objs, None, df) == {"accuracy": 0.0, "params": 1200.0}
    # a min-mode reference below a point leaves that point out
    assert hypervolume(df, objs, {"accuracy": 0.0, "params": 900}) == pytest.approx(0.78 * 100)


def test_three_objectives_front_and_volume_by_inclusion_exclusion():
    objs = [("accuracy", "max"), ("speedup", "max"), ("params_reduction", "max")]
    df = pd.DataFrame({"trial_id": ["a", "b", "c"], "status": "complete",
                       "accuracy": [1.0, 3.0, 0.5], "speedup": [2.0, 1.0, 0.5], "params_reduction": [3.0, 1.0, 0.5]})
    assert front_ids(df, objs) == {"a", "b"}
    # boxes from the origin: 1*2*3 + 3*1*1 - overlap 1*1*1
    assert hypervolume(df, objs, [0.0, 0.0, 0.0]) == pytest.approx(8.0)


def test_points_worse_than_the_reference_are_left_out():
    df = table([(0.9, 0.95), (0.5, 1.2)])  # the first is slower than the teacher
    assert hypervolume(df, AS) == pytest.approx(0.5 * 0.2)
    assert hypervolume(table([(0.9, 0.95)]), AS) == 0.0
    assert front_ids(df) == {"x0", "x1"}  # still non-dominated, just outside the reference box


def test_unknown_objective_lists_the_known_metrics():
    df = factory_df()
    with pytest.raises(UnknownObjectiveError, match=r"unknown objective metric 'acuracy' \(known: .*accuracy.*speedup"):
        pareto_mask(df, "acuracy:max,speedup:max")
    with pytest.raises(UnknownObjectiveError, match="hp_alpha|unknown objective"):
        pareto_mask(df, "hp_alpha:max")  # hyperparameters are not objectives


def test_parse_objectives_forms_and_errors():
    assert parse_objectives("accuracy:max, params:min") == [("accuracy", "max"), ("params", "min")]
    assert parse_objectives("speedup") == [("speedup", "max")]
    assert parse_objectives([{"metric": "flops", "mode": "min"}]) == [("flops", "min")]
    for bad, msg in (("accuracy:best", "mode must be max or min"), ("", "no objectives"),
                     ("accuracy:max,accuracy:min", "listed twice"), ([3], "bad objective")):
        with pytest.raises(RaykdInputError, match=msg):
            parse_objectives(bad)


def test_reference_point_resolution():
    df = factory_df()
    assert resolve_reference(AS, None, TEACHER, df) == {"accuracy": 0.0, "speedup": 1.0}
    assert resolve_reference(AS, [0.5, 1.1]) == {"accuracy": 0.5, "speedup": 1.1}
    assert resolve_reference(AS, {"speedup": 1.2}) == {"accuracy": 0.0, "speedup": 1.2}
    assert default_reference([("flops", "min")], TEACHER) == {"flops": float(TEACHER["flops"])}
    with pytest.raises(RaykdInputError, match="not among the objectives"):
        resolve_reference(AS, {"params": 1})
    with pytest.raises(RaykdInputError, match="2 objectives"):
        resolve_reference(AS, [1.0])
    with pytest.raises(RaykdInputError, match="finite"):
        resolve_reference(AS, [math.nan, 1.0])
    # a raised reference shrinks the volume by exactly the cut-off strips
    assert hypervolume(df, AS, {"accuracy": 0.0, "speedup": 1.2}) == pytest.approx(0.790 * 0.10 + 0.760 * 0.15)


# -- property tests against brute force ------------------------------------------------------------

def brute_front(points: list[tuple[float, float]]) -> list[bool]:
    def dominates(a, b):
        return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))
    return [not any(dominates(q, p) for q in points) for p in points]


def brute_hv_2d(points, ref=(0.0, 1.0)) -> float:
    """Area of the union of boxes [ref, p], on the grid of all coordinates."""
    xs = sorted({ref[1], *[p[1] for p in points]})
    area = 0.0
    for lo, hi in itertools.pairwise(xs):
        height = max((p[0] - ref[0] for p in points if p[1] >= hi and p[0] >= ref[0]), default=0.0)
        area += (hi - lo) * max(height, 0.0)
    return area


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=12))
def test_front_and_volume_match_brute_force(raw):
    points = [(a / 6.0, 1.0 + b / 6.0) for a, b in raw]  # small grid: many ties and duplicates
    df = table(points)
    assert list(pareto_mask(df, AS)) == brute_front(points)
    assert hypervolume(df, AS) == pytest.approx(brute_hv_2d(points), abs=1e-12)


def test_objective_direction_is_applied_per_column():
    df = table([(0.8, 1.2), (0.7, 1.3)])
    assert front_ids(df, [("accuracy", "max"), ("speedup", "max")]) == {"x0", "x1"}
    assert front_ids(df, [("accuracy", "min"), ("speedup", "min")]) == {"x0", "x1"}
    assert front_ids(df, [("accuracy", "max"), ("speedup", "min")]) == {"x0"}
    assert front_ids(df, [("accuracy", "min"), ("speedup", "max")]) == {"x1"}
    assert np.array_equal(pareto_mask(df, [("accuracy", "max")]), [True, False])
    assert np.array_equal(pareto_mask(df, [("accuracy", "min")]), [False, True])


# -- one speed source per front (issue 35: a table's prediction and a trial's timing never share an axis)

def test_a_front_refuses_to_rank_predicted_and_measured_speeds_together():
    from raykd.results.pareto import MixedSpeedSourceError

    df = table([(0.8, 1.5), (0.7, 2.0), (0.6, 2.5)], speedup_source=["latency table", "measured", "latency table"])
    with pytest.raises(MixedSpeedSourceError, match=r"latency table: 2 \(x0, x2\); measured: 1 \(x1\)"):
        pareto_mask(df, AS)
    with pytest.raises(MixedSpeedSourceError):
        hypervolume(df, AS)
    assert list(pareto_mask(df, [("accuracy", "max")])) == [True, False, False]  # no speed axis: nothing to mix
    one = table([(0.8, 1.5), (0.7, 2.0)], speedup_source=["measured", "measured"])
    assert list(pareto_mask(one, AS)) == [True, True]
    failed = table([(0.8, 1.5), (0.7, 2.0)], status=["complete", "failed"], speedup_source=["latency table", "measured"])
    assert list(pareto_mask(failed, AS)) == [True, False]  # only rows that could be on the front count


def test_the_stored_front_is_never_written_over_mixed_speed_sources(tmp_path):
    from raykd.results.pareto import MixedSpeedSourceError
    from raykd.results.store import update_pareto, write_sweep_meta, write_trial

    sweep = tmp_path / "mixed"
    write_sweep_meta(sweep, {"objectives": "accuracy:max,speedup:max"})
    for tid, source, acc, speed in (("a", "latency table", 0.8, 1.5), ("b", "measured", 0.7, 2.0)):
        write_trial(sweep, {"sweep": "mixed", "trial_id": tid, "status": "complete", "accuracy": acc, "speedup": speed,
                            "speedup_source": source})
    with pytest.raises(MixedSpeedSourceError, match="mixes speed sources"):
        update_pareto(sweep)
    assert not (sweep / "results" / "pareto.parquet").exists()
