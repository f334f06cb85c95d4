"""Constraints: parsing, violations in Optuna's convention, constrained samplers never putting an
infeasible point on the feasible front (a real Optuna study, ask/tell, no Ray)."""

from __future__ import annotations

import optuna
import pytest

from raykd.search.space import make_sampler, parse_space
from raykd.errors import ConfigError
from raykd.search.constraints import (
    Constraint,
    before_training,
    feasible,
    parse_constraints,
    set_constraints,
    violations,
)


def test_violations_are_scaled_and_signed_as_optuna_expects():
    c = Constraint("speedup", min=1.5)
    assert c.violation(1.5) == 0.0 and c.violation(1.8) < 0 and c.violation(1.2) == pytest.approx(0.2)
    both = Constraint("params_reduction", min=0.2, max=0.5)
    assert both.violation(0.3) < 0 and both.violation(0.6) == pytest.approx(0.2) and both.violation(0.1) == pytest.approx(0.5)
    assert c.violation(None) == 1.0 and c.violation(float("nan")) == 1.0  # not recorded: infeasible
    assert feasible([c, both], {"speedup": 2.0, "params_reduction": 0.3})
    assert violations([c], {}) == [1.0]


@pytest.mark.parametrize(("raw", "message"), [
    ({"metric": "speed", "min": 1}, "unknown metric 'speed'"),
    ({"metric": "speedup"}, "needs min, max or both"),
    ({"metric": "speedup", "min": 2, "max": 1}, "can never hold"),
    ({"metric": "speedup", "min": "fast"}, "must be a finite number"),
    ({"metric": "speedup", "above": 1}, "each constraint is"),
])
def test_bad_constraints_are_one_clear_error(raw, message):
    with pytest.raises(ConfigError, match=message):
        parse_constraints([raw], "space.yaml")


def test_which_constraints_the_configuration_decides():
    cs = parse_constraints([{"metric": "speedup", "min": 1.5}, {"metric": "accuracy", "min": 0.5},
                            {"metric": "params_reduction", "min": 0.2}], "s")
    assert [c.metric for c in before_training(cs, speed_from_table=True)] == ["speedup", "params_reduction"]
    assert [c.metric for c in before_training(cs, speed_from_table=False)] == ["params_reduction"]  # measured: after


def test_space_constraints_halving_and_gp_parse():
    base = {"search": {"alpha": {"low": 0.0, "high": 1.0}}}
    space = parse_space({**base, "constraints": [{"metric": "speedup", "min": 1.5}], "sampler": {"type": "gp"},
                         "early_stop": {"type": "mo-successive-halving", "eta": 2, "accuracy_floor": 0.1}})
    assert space.halving.eta == 2 and space.halving.coordinates == (("accuracy", "max"), ("forecast_speedup", "max"))
    assert space.accuracy_floor == (0.1, 1)
    assert isinstance(make_sampler(space), optuna.samplers.GPSampler)
    for bad, message in [({"early_stop": {"type": "asha"}}, "early_stop.type must be mo-successive-halving"),
                         ({"early_stop": {"eta": 3}}, "need type: mo-successive-halving"),
                         ({"early_stop": {"type": "mo-successive-halving", "eta": 1}}, "eta must be an integer >= 2"),
                         ({"early_stop": {"after_round": 2}}, "after_round needs accuracy_floor"),
                         ({"constraints": {"metric": "speedup"}}, "constraints must be a list")]:
        with pytest.raises(ConfigError, match=message):
            parse_space({**base, **bad}, "s.yaml")


@pytest.mark.parametrize("sampler", ["tpe", "nsga2", "gp"])
def test_a_constrained_study_never_puts_an_infeasible_trial_on_its_front(sampler):
    """Toy problem: accuracy falls and speedup rises with x; the budget is speedup >= 1.5."""
    space = parse_space({"search": {"alpha": {"low": 0.0, "high": 1.0}}, "constraints": [{"metric": "speedup", "min": 1.5}],
                         "sampler": {"type": sampler, "n_startup_trials": 4, "population_size": 4, "seed": 3}})
    study = optuna.create_study(directions=["maximize", "maximize"], sampler=make_sampler(space))
    for _ in range(12):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0.0, 1.0)})
        x = trial.params["x"]
        figures = {"accuracy": 1.0 - x * x, "speedup": 1.0 + x}
        set_constraints(trial, space.constraints, violations(space.constraints, figures))
        study.tell(trial, [figures["accuracy"], figures["speedup"]])
    front = study.best_trials
    assert front and all(t.params["x"] >= 0.5 for t in front)
    assert any(t.params["x"] < 0.5 for t in study.trials)  # infeasible points were tried, and kept off the front
