"""The rules of multi-objective successive halving, on hand-built rungs."""

from __future__ import annotations

import json
import math

import pytest

from raykd.errors import ConfigError
from raykd.search.successive_halving import HalvingConfig, SuccessiveHalving


def _at(rules: SuccessiveHalving, trial: str, acc: float | None, speed: float | None, round_: int = 1, rounds: int = 3):
    return rules.on_round(trial, round_, rounds, {"accuracy": acc, "forecast_speedup": speed})


def test_rungs_are_geometric_rounds_below_the_last():
    assert HalvingConfig(eta=3, min_rounds=1).rungs(3) == [1]
    assert HalvingConfig(eta=2, min_rounds=1).rungs(5) == [1, 2, 4]
    assert HalvingConfig(eta=2, min_rounds=2).rungs(2) == []  # a chain's last round is its result, never a rung
    with pytest.raises(ConfigError, match="eta must be an integer >= 2"):
        HalvingConfig(eta=1)
    with pytest.raises(ConfigError, match="min_rounds must be an integer >= 1"):
        HalvingConfig(min_rounds=0)


def test_fewer_trials_than_eta_stop_nothing():
    rules = SuccessiveHalving(HalvingConfig(eta=3))
    assert _at(rules, "a", 0.9, 2.0).go_on
    assert _at(rules, "b", 0.1, 1.1).go_on  # dominated, but a rung of two has no top third yet
    assert rules.stopped() == {}


def test_a_dominated_trial_is_stopped_and_a_non_dominated_one_goes_on():
    rules = SuccessiveHalving(HalvingConfig(eta=3))
    _at(rules, "a", 0.9, 1.2)
    _at(rules, "b", 0.5, 1.8)
    c = _at(rules, "c", 0.4, 1.1)  # dominated by both: 3 at the rung, the top 1 go on
    assert not c.go_on and (c.at_rung, c.keep, c.better) == (3, 1, 2)
    d = _at(rules, "d", 0.95, 1.9)  # dominates everyone
    assert d.go_on and d.better == 0
    e = _at(rules, "e", 0.6, 1.3)  # non-dominated among a, b, c? no: d dominates it (1 better), keep = 5 // 3 = 1
    assert not e.go_on and e.better == 1
    assert set(rules.stopped()) == {"c", "e"}
    assert _at(rules, "f", 0.1, 1.0, round_=3).__class__ is type(None)  # the last round is not a rung


def test_ties_share_a_fate_and_missing_figures_are_the_worst():
    rules = SuccessiveHalving(HalvingConfig(eta=2))
    _at(rules, "a", 0.5, 1.5)
    assert _at(rules, "b", 0.5, 1.5).go_on  # identical coordinates: same front, nobody strictly better
    assert _at(rules, "c", 0.5, 1.5).go_on
    nan = _at(rules, "d", math.nan, 1.5)
    missing = _at(rules, "e", 0.5, None)  # worse than a, b, c in speed, tied in accuracy
    assert not nan.go_on and not missing.go_on


def test_a_re_reported_rung_keeps_its_first_decision():
    rules = SuccessiveHalving(HalvingConfig(eta=2))
    _at(rules, "a", 0.9, 2.0)
    assert not _at(rules, "b", 0.1, 1.0).go_on
    assert not _at(rules, "b", 0.99, 3.0).go_on  # a restarted worker group reporting round 1 again
    assert rules.records[1]["b"] == [-0.1, -1.0]


def test_the_state_round_trips_through_json_and_decides_the_same():
    rules = SuccessiveHalving(HalvingConfig(eta=2, min_rounds=1))
    for t, acc, speed in [("a", 0.9, 1.2), ("b", 0.2, 1.1), ("c", None, 1.5)]:
        _at(rules, t, acc, speed)
    again = SuccessiveHalving.from_dict(json.loads(json.dumps(rules.to_dict())))
    assert again.to_dict() == rules.to_dict() and again.stopped() == rules.stopped()
    assert _at(again, "d", 0.3, 1.15).go_on == _at(rules, "d", 0.3, 1.15).go_on
    assert again.to_dict() == rules.to_dict()


def test_min_mode_coordinates():
    rules = SuccessiveHalving(HalvingConfig(eta=2, coordinates=(("accuracy", "max"), ("forecast_params", "min"))))
    rules.on_round("a", 1, 2, {"accuracy": 0.8, "forecast_params": 100})
    assert not rules.on_round("b", 1, 2, {"accuracy": 0.8, "forecast_params": 120}).go_on
    assert rules.on_round("c", 1, 2, {"accuracy": 0.7, "forecast_params": 50}).go_on
