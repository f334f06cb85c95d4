"""The search-against-compute benchmark's bookkeeping (bench/search_compute.py), on hand-built
studies: what its tables claim must follow from the trials, whatever order the studies finished in."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "search_compute.py"


@pytest.fixture(scope="module")
def sc():
    spec = importlib.util.spec_from_file_location("search_compute", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def study(sampler: str, seed: int, hvs: list[float], halving: bool = False) -> dict:
    """A study whose hypervolume after trial i is hvs[i] (2 rounds per trial, none stopped)."""
    trials = [{"number": i, "state": "complete", "trial_rounds": 2 * (i + 1), "wall_s": 10.0 * (i + 1), "ask_s": 0.0, "hv": hv}
              for i, hv in enumerate(hvs)]
    return {"sampler": sampler, "seed": seed, "halving": halving, "trials": trials, "stopped": 0, "rounds_per_chain": 2}


def test_seeds_are_paired_by_seed_not_by_the_order_studies_finished(sc):
    # budget 1: the sampler after 1 trial against random after 2; seed 4 finished before seed 3
    results = {"random/seed3": study("random", 3, [0.1, 0.5]), "random/seed4": study("random", 4, [0.1, 0.9]),
               "tpe/seed4": study("tpe", 4, [0.95, 0.95]), "tpe/seed3": study("tpe", 3, [0.6, 0.6])}
    summ = sc.summarise(results, 1, "tpe")
    row = summ["each_at_B_vs_random_at_2B"]["tpe"]
    # seed 3: 0.6 >= 0.5; seed 4: 0.95 >= 0.9 -> both seeds (paired in finishing order, only one)
    assert row["seeds_at_or_above"] == 2
    assert summ["default_at_B_vs_random_at_2B"]["met"] is True
    pair = summ["paired_at_2B"]["random vs tpe"]
    assert pair["seeds"] == [3, 4] and pair["diffs"] == pytest.approx([-0.1, -0.05]) and pair["x_above"] == 0


def test_every_per_seed_list_is_in_seed_order_whatever_order_studies_finished(sc):
    """The halving table printed per-seed fractions in finishing order (seed 2, 1, 0, 4, 3) beside
    no seed labels; every per-seed list must be in seed order."""
    results = {}
    for seed in (2, 0, 1):  # finishing order
        results[f"random/seed{seed}"] = study("random", seed, [0.1 * (seed + 1), 0.2 * (seed + 1)])
        results[f"random+halving/seed{seed}"] = study("random", seed, [0.1 * (seed + 1), 0.2 * (seed + 1)], halving=True)
    summ = sc.summarise(results, 1, "tpe")
    assert summ["per_sampler"]["random"]["hv_at_B_rounds"]["per_seed"] == pytest.approx([0.1, 0.2, 0.3])
    rows = summ["halving_rounds_to_reach"]["random"]["per_seed"]
    assert [r["seed"] for r in rows if r["target"] == "B"] == [0, 1, 2]
    assert "seed 0: 1.00, seed 1: 1.00, seed 2: 1.00" in sc.markdown({"summary": summ, "budget": 1, "studies": results})


def test_five_seeds_cannot_reach_p_below_0_05_and_ties_give_no_p(sc):
    assert sc.wilcoxon_p([0.1, 0.2, 0.3, 0.4, 0.5]) == pytest.approx(0.0625)
    assert sc.wilcoxon_p([0.0, 0.0, 0.0]) is None
    assert sc.wilcoxon_p([0.3]) is None


def test_halving_is_charged_rounds_and_compared_with_its_own_seed(sc):
    plain = study("random", 0, [0.5, 1.0])
    halved = study("random", 0, [0.5, 0.7, 1.2], halving=True)
    for t, rounds in zip(halved["trials"], (1, 2, 4)):  # chains stopped at round 1 cost one round
        t["trial_rounds"] = rounds
    summ = sc.summarise({"random/seed0": plain, "random+halving/seed0": halved}, 1, "tpe")
    rows = {r["target"]: r for r in summ["halving_rounds_to_reach"]["random"]["per_seed"]}
    assert rows["B"]["halving_rounds"] == 1 and rows["B"]["fraction_of_budget"] == pytest.approx(0.5)
    assert rows["2B"]["halving_rounds"] == 4 and rows["2B"]["fraction_of_budget"] == pytest.approx(1.0)


def test_a_merge_refuses_a_report_of_another_budget_or_halving(sc, tmp_path):
    report = tmp_path / "earlier.json"
    report.write_text(json.dumps({"space": "default", "sets": [], "budget": 6, "halving": {"eta": 3, "min_rounds": 1}}))
    args = SimpleNamespace(set=[], eta=3, min_rounds=1)
    assert sc.load_earlier(str(report), "default", args, 6)["budget"] == 6
    with pytest.raises(SystemExit, match="its budget is 6, this run's is 12"):
        sc.load_earlier(str(report), "default", args, 12)
    with pytest.raises(SystemExit, match="its halving is"):
        sc.load_earlier(str(report), "default", SimpleNamespace(set=[], eta=2, min_rounds=1), 6)


def test_the_stored_report_reprints_its_tables(sc, tmp_path, capsys):
    stored = Path(__file__).resolve().parents[2] / "bench" / "results" / "search_compute.json"
    if not stored.is_file():
        pytest.skip("no stored report")
    assert sc.main(["--table", str(stored), "--work", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| tpe |" in out and "Wilcoxon p" in out
