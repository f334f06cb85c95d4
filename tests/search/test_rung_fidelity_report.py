"""The rung-fidelity benchmark's arithmetic (bench/rung_fidelity.py), on hand-built chains."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "rung_fidelity.py"


@pytest.fixture(scope="module")
def rf():
    sys.path.insert(0, str(BENCH.parent))  # it imports search_compute beside it
    spec = importlib.util.spec_from_file_location("rung_fidelity", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chain(final: float, at1: float, look1: float, s1: float = 1.1, forecast: float = 2.0) -> dict:
    return {"chain_rounds": 2, "forecast_speedup": forecast,
            "rounds": [{"round": 0, "accuracy": 0.8, "speedup": 1.0, "lookahead": look1 - 0.1},
                       {"round": 1, "accuracy": at1, "speedup": s1, "lookahead": look1},
                       {"round": 2, "accuracy": final, "speedup": forecast}]}


def test_extrapolation_scales_the_loss_so_far_by_log_speedup(rf):
    c = chain(0.7, 0.78, 0.5, s1=math.sqrt(2.0), forecast=2.0)  # half the log-speedup done: twice the loss
    assert rf.rung_value(c, 1, "extrapolated") == pytest.approx(0.8 - 2 * 0.02)
    assert rf.rung_value(c, 0, "extrapolated") is None  # no loss measured yet
    assert rf.rung_value(chain(0.7, 0.78, 0.5, s1=1.0), 1, "extrapolated") is None  # nothing cut yet: no scale
    assert rf.rung_value(c, 1, "lookahead") == 0.5 and rf.rung_value(c, 3, "accuracy") is None


def test_a_metric_that_orders_final_accuracy_gets_rho_one_and_one_that_reverses_it_minus_one(rf):
    chains = [chain(final=0.5 + 0.05 * i, at1=0.8 - 0.01 * i, look1=0.2 + 0.1 * i) for i in range(6)]
    rho = rf.correlations(chains)
    assert rho["lookahead"]["1"]["rho"] == pytest.approx(1.0) and rho["lookahead"]["0"]["rho"] == pytest.approx(1.0)
    assert rho["accuracy"]["1"]["rho"] == pytest.approx(-1.0) and rho["accuracy"]["1"]["n"] == 6
    assert "0" not in rho["accuracy"]  # every chain starts from the same teacher: no ranking to score
    assert "| lookahead | +1.00" in rf.markdown({"chain_rounds": 2, "spearman": rho})


def test_the_replay_stops_dominated_chains_and_charges_the_rounds_they_ran(rf):
    # 2-round chains (eta 3: one rung, round 1); chains 0-2 form a front, 3-5 are dominated by chain 1
    specs = [(0.80, 1.2), (0.75, 1.5), (0.70, 1.8), (0.60, 1.4), (0.55, 1.3), (0.50, 1.45)]
    chains = [{"chain_rounds": 2, "forecast_speedup": s,
               "rounds": [{"round": 0, "accuracy": 0.8, "speedup": 1.0}, {"round": 1, "accuracy": 0.8, "speedup": 1.1},
                          {"round": 2, "accuracy": a, "speedup": s}]} for a, s in specs]
    oracle = rf.replay_halving(chains, list(range(6)), "oracle", eta=3, min_rounds=1, budget_rounds=100, teacher_accuracy=0.8)
    assert [spent for spent, _hv in oracle] == [2, 4, 6, 7, 8, 9]  # the dominated three stopped after round 1
    assert oracle[2][1] == oracle[-1][1] > oracle[1][1] > 0  # and the front was complete after the first three
    # the round-1 accuracy is the same for every chain: ranked by the forecast alone, chain 4 (1.3x) is
    # dominated by chain 1 at the rung (same accuracy, faster forecast) and stops, chain 3 (1.4x) too
    same = rf.replay_halving(chains, list(range(6)), "accuracy", eta=3, min_rounds=1, budget_rounds=100, teacher_accuracy=0.8)
    assert same[-1][0] < 12
    summary = rf.replay(chains, 0.8, trials=3, orders=5, etas=(3,))
    assert summary["results"]["oracle/eta3"]["reached"] == 1.0 and summary["budget_rounds"] == 6
