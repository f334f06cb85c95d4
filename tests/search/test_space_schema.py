"""The space file's sections are pydantic models (raykd.search.schema); their mistakes read as raykd's
own one-line messages, byte for byte the ones the hand-written checks gave, each naming its key."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import yaml
from sweep_spaces import small_space

from raykd.cli import main
from raykd.errors import ConfigError
from raykd.search.space import Resources, parse_space
from raykd.search.vocabulary import SPEED_DEFAULTS, TOP_LEVEL

KNOWN = ", ".join(TOP_LEVEL)
SPEED_LIKE = "{source: table, rounds: 60, retime_rounds: 30, retime_sessions: 3, table_cache: true, calibration: 16}"
EARLY_LIKE = "{accuracy_floor: 0.3, after_round: 1} or {type: mo-successive-halving, eta: 3, min_rounds: 1}"
SEARCH = {"alpha": {"low": 0.0, "high": 1.0}}


def lam(spec):
    return {"search": {**SEARCH, "lambda1": spec}}


# (change to a small valid space, the whole line parse_space raises): the messages no other test pinned
MESSAGES = [
    ({"colour": 1, "shape": 2}, f"unknown key(s) colour, shape (known: {KNOWN})"),
    ({"name": ""}, "name must be a non-empty string"),
    ({"data": ["x"]}, "data must be a non-empty string"),
    ({"name": "../x"}, "name '../x' must be one directory level: letters, digits, '-', '_', '.', starting with a letter or "
                       "digit, at most 128 characters"),
    ({"num_samples": "3"}, "num_samples must be an integer in 1..10000, got '3'"),
    ({"seed": 1.5}, "seed must be an integer in 0..4294967295, got 1.5"),
    ({"search": {}}, "search must map at least one chain setting to a range"),
    ({"search": "alpha"}, "search must map at least one chain setting to a range"),
    ({"fixed": "x"}, "fixed must be a mapping of chain settings"),
    (lam(0.5), "search.lambda1: expected a mapping like {low: 0, high: 1} or {choices: [...]}"),
    (lam({"lo": 0, "hi": 1}), "search.lambda1: unknown key(s) hi, lo"),
    (lam({"choices": []}), "search.lambda1.choices must be a non-empty list"),
    (lam({"low": 0.1}), "search.lambda1: needs low and high (or choices)"),
    (lam({"low": None, "high": 1}), "search.lambda1.low must be a number, got None"),
    (lam({"low": -(10**400), "high": 1}), "search.lambda1.low is too large: a number of over 300 digits"),
    (lam({"low": 0.1, "high": 0.5, "type": "str"}), "search.lambda1.type must be int or float, got 'str'"),
    (lam({"low": 0.1, "high": 0.5, "type": "int"}), "search.lambda1: integer range needs integer bounds"),
    ({"search": {**SEARCH, "rounds": {"low": 1.5, "high": 3}}}, "search.rounds: integer range needs integer bounds"),
    (lam({"low": 0.1, "high": 0.5, "log": "yes"}), "search.lambda1.log must be true or false"),
    (lam({"low": 0.0, "high": 0.5, "log": True}), "search.lambda1: a log range needs low > 0"),
    ({"objectives": []}, "objectives must be a non-empty list of {metric, mode}"),
    ({"objectives": [{"metric": "beauty"}]}, "each objective needs exactly metric and mode"),
    ({"objectives": [{"metric": "accuracy", "mode": "up"}]}, "objective mode must be max or min, got 'up'"),
    ({"objectives": [{"metric": "accuracy", "mode": "max"}, {"metric": "accuracy", "mode": "min"}]},
     "an objective metric is listed twice"),
    ({"sampler": "tpe"}, "sampler.type must be one of tpe, nsga2, gp, random"),
    ({"sampler": {"type": "annealing", "colour": 1}}, "sampler.type must be one of tpe, nsga2, gp, random"),
    ({"sampler": {"type": "tpe", "colour": 1}}, "sampler has unknown key(s) colour"),
    ({"sampler": {"type": "tpe", "seed": True}}, "sampler.seed must be a non-negative integer"),
    ({"sampler": {"type": "tpe", "n_startup_trials": 10**5}}, "sampler.n_startup_trials must be at most 10,000, got 100,000"),
    ({"early_stop": "halving"}, f"early_stop must be a mapping like {EARLY_LIKE}"),
    ({"early_stop": {"kind": 1}}, "early_stop has unknown key(s) kind"),
    ({"early_stop": {"min_rounds": 3}}, "early_stop.eta and min_rounds need type: mo-successive-halving"),
    ({"early_stop": {"accuracy_floor": "0.2"}}, "early_stop.accuracy_floor must be a number in [0, 1], got '0.2'"),
    ({"early_stop": {"type": "mo-successive-halving", "eta": "3"}}, "early_stop.eta must be an integer >= 2, got '3'"),
    ({"resources": [1]}, "resources must be a mapping"),
    ({"resources": {"nodes": 2}}, "resources has unknown key(s) nodes"),
    ({"resources": {"workers": None}}, "resources.workers must be a number"),
    ({"speed": "fast"}, f"speed must be a mapping like {SPEED_LIKE}"),
    ({"speed": {"source": None}}, "speed.source must be one of ('table', 'measured'), got None"),
    ({"speed": {"rounds": 2.0}}, "speed.rounds must be an integer in 1..10000, got 2.0"),
    ({"speed": {"retime_rounds": 20000}}, "speed.retime_rounds must be 0 (off) or an integer in 2..10000, got 20000"),
    ({"speed": {"retime_sessions": 17}}, "speed.retime_sessions must be an integer in 1..16, got 17"),
]


@pytest.mark.parametrize("change, message", MESSAGES)
def test_each_mistake_is_raykds_own_line(change, message):
    raw = small_space("teacher", "runs")
    raw.update(change)
    with pytest.raises(ConfigError) as err:
        parse_space(raw, "s.yaml")
    assert str(err.value) == f"s.yaml: {message}"


@pytest.mark.parametrize("change, message", [
    ({"search": {"layer_p_max": {"choices": "0.0, 0.5"}}}, "search.layer_p_max.choices must be a non-empty list"),
    ({"search": {"p_max": {"low": "0.1", "high": 0.5}}}, "search.p_max.low must be a number, got '0.1'"),
    ({"search": {"p_max": {"low": [0.1], "high": 0.5}}}, "search.p_max.low must be a number, got [0.1]"),
    ({"speed": {"rounds": "60"}}, "speed.rounds must be an integer in 1..10000, got '60'"),
    ({"resources": {"cpus_per_worker": "1"}}, "resources.cpus_per_worker must be a number"),
    ({"num_samples": [4]}, "num_samples must be an integer in 1..10000, got [4]"),
])
def test_a_wrong_type_is_one_line_naming_the_key(change, message, tmp_path, capsys):
    """A string or a list where a number (or a list of them) belongs: exit 2, one line, the key."""
    raw = small_space(tmp_path / "teacher", tmp_path / "runs")
    raw.update(change)
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["sweep", "--space", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"raykd: error: {path}: {message}"]
    assert not (tmp_path / "runs").exists()


def test_keys_that_are_no_strings_are_named_not_a_crash():
    """YAML's `1: x` gives an integer key; sorting it among strings used to raise TypeError."""
    raw = {**small_space("teacher", "runs"), "colour": 1, 1: "x"}
    with pytest.raises(ConfigError, match=r"^s\.yaml: unknown key\(s\) 1, colour \(known: name, "):
        parse_space(raw, "s.yaml")
    raw = small_space("teacher", "runs")
    raw["speed"] = {**raw["speed"], 2: 3}
    with pytest.raises(ConfigError, match=r"^s\.yaml: speed has unknown key\(s\) 2$"):
        parse_space(raw, "s.yaml")


def test_the_models_name_the_keys_the_space_has():
    """The top-level keys, speed defaults and resources are each written once more in the schema."""
    from raykd.search.schema import ResourcesSpec, SpaceFile, SpeedSpec

    assert set(SpaceFile.model_fields) == set(TOP_LEVEL)
    assert {k: f.default for k, f in SpeedSpec.model_fields.items()} == SPEED_DEFAULTS
    assert {k: f.default for k, f in ResourcesSpec.model_fields.items()} == dataclasses.asdict(Resources())


def test_reading_the_space_module_imports_no_pydantic_torch_or_ray():
    """Every command imports raykd.search.space at start-up: the models load when a space is parsed."""
    code = ("import sys\nimport raykd.search.space\n"
            "print(' '.join(m for m in ('pydantic', 'torch', 'ray', 'optuna') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == []
