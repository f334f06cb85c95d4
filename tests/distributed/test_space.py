"""Search-space validation: every mistake is one line on stderr and exit code 2, before Ray starts."""

import re

import pytest
import yaml
from sweep_spaces import small_space

from raykd.cli import main
from raykd.search.space import load_space, parse_space


@pytest.mark.parametrize("name", ["default.yaml", "default-2x.yaml", "paper.yaml", "asdiv-minilm.yaml", "asdiv-structured.yaml",
                                  "traces-smollm2.yaml"])
def test_shipped_spaces_are_valid(name):
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "search_spaces" / name
    space = load_space(path)
    assert space.metrics[:2] == ["accuracy", "speedup"] and space.modes[:2] == ["max", "max"]
    for p in space.search:  # both ends of every range make a valid chain config
        lo, hi = p.bounds
        space.chain_config({p.name: lo})
        space.chain_config({p.name: hi})


def test_embedded_default_equals_the_shipped_file():
    from pathlib import Path

    from raykd.search.space import DEFAULT_SPACE_YAML

    shipped = (Path(__file__).resolve().parents[2] / "search_spaces" / "default.yaml").read_text()
    assert yaml.safe_load(shipped) == yaml.safe_load(DEFAULT_SPACE_YAML)


def test_default_sweep_selects_and_reports_on_splits_with_3_point_intervals():
    """Issue 11: the front is chosen on valid and reported on test; at any accuracy their 95%
    Wilson half-width must be at most 3 points (the worst case is 50%)."""
    from raykd.data import load_splits
    from raykd.search.space import load_space
    from raykd.stats import wilson_interval

    space = load_space(None)
    splits = load_splits(space.data, seed=space.seed)
    for name in ("valid", "test"):
        n = len(splits[name])
        low, high = wilson_interval(n // 2, n)
        assert (high - low) / 2 <= 0.03, (name, n)


BAD = [
    ({"speed": {"retime_rounds": 1}}, "retime_rounds must be 0 (off) or an integer in 2..10000"),
    ({"speed": {"retime_rounds": True}}, "retime_rounds must be 0"),
    ({"speed": {"retime_sessions": 0}}, "speed.retime_sessions must be an integer in 1..16"),
    ({"speed": {"retime_rounds": 5, "retime_sessions": 3}}, "retime_rounds (5) must give each of the 3 retime_sessions at least 2"),
    ({"speed": {"table_cache": "yes"}}, "speed.table_cache must be true or false"),
    ({"speed": {"calibration": -1}}, "speed.calibration must be an integer in 0..64"),
    ({"speed": {"calibration": 2.5}}, "speed.calibration must be an integer in 0..64"),
    ({"fixed": {"latency_workload": "warp"}}, "fixed.latency_workload 'warp' is not one of the mwp task's workloads: default, decode, forward"),
    ({"colour": "blue"}, "unknown key"),
    ({"task": "nosuch"}, "task 'nosuch' is neither one of raykd's tasks (mwp, causal-lm) nor an import path"),
    ({"task": "no_such_module_xyz:make"}, "cannot import 'no_such_module_xyz'"),
    ({"task": {"name": "causal-lm", "max_new_tokens": 0}}, "task 'causal-lm': max_new_tokens must be an integer >= 1"),
    ({"task": "causal-lm", "teacher": {"preset": "tiny"}}, "teacher has unknown key(s) preset (known: model, path"),
    ({"task": "causal-lm", "teacher": {"model": "tiny"}, "fixed": {"latency_workload": "decode"}},
     "fixed.latency_workload 'decode' is not one of the causal-lm task's workloads: default, generate, forward"),
    ({"search": {"alpha": {"low": 0.0, "high": 1.0}, "alfa": {"low": 0, "high": 1}}}, "alfa: not a chain setting"),
    ({"search": {"alpha": {"low": "zero", "high": 1.0}}}, "alpha.low must be a number"),
    ({"search": {"alpha": {"low": 0.6, "high": 0.6}}}, "empty range"),
    ({"search": {"p_max": {"low": 0.5, "high": 1.0}}}, "p_max must be in"),
    ({"search": {"alpha": {"low": 0.0, "high": 1.0}}, "fixed": {"p_max": 1.2}}, "p_max must be in"),
    ({"search": {"alpha": {"low": 0.0, "high": 1.0}, "p_min": {"low": 0.6, "high": 0.8}}, "fixed": {"p_max": 0.3}},
     "p_min can never be"),
    ({"fixed": {"rounds": "three"}}, "rounds must be an integer"),
    ({"objectives": [{"metric": "beauty", "mode": "max"}]}, "unknown objective metric"),
    ({"sampler": {"type": "annealing"}}, "sampler.type"),
    ({"resources": {"workers": 0}}, "workers must be >= 1"),
    ({"resources": {"worker_niceness": 25}}, "worker_niceness must be an integer in 0..19"),
    ({"resources": {"worker_niceness": 0.5}}, "worker_niceness must be an integer in 0..19"),
    ({"num_samples": 0}, "num_samples"),
    # issue 33: numbers with sane upper bounds (10**30 trials made Tune start an "infinite" sweep)
    ({"num_samples": 10**30}, "num_samples must be an integer in 1..10000, got 1e+30"),
    ({"seed": 2**40}, "seed must be an integer in 0..4294967295"),
    ({"fixed": {"rounds": 10**9}}, "fixed.rounds must be at most 100, got 1,000,000,000"),
    ({"fixed": {"tau": float("inf")}}, "fixed.tau must be a finite number, got inf"),
    ({"search": {"rounds": {"low": 1, "high": 10**30}}}, "search.rounds.high is too large: 1e+30"),
    ({"search": {"latency_repeats": {"choices": [3, 10**7]}}}, "latency_repeats must be at most 100,000"),
    ({"teacher": {"preset": "tiny", "epochs": 10**8}}, "teacher.epochs must be at most 10,000"),
    ({"resources": {"concurrent_trials": 10**9}}, "resources.concurrent_trials must be at most 10,000"),
    ({"resources": {"cpus_per_worker": float("inf")}}, "resources.cpus_per_worker must be a finite number"),
    ({"sampler": {"type": "nsga2", "population_size": 10**8}}, "sampler.population_size must be at most 10,000"),
    ({"task": {"name": "causal-lm", "max_new_tokens": 100_000}}, "task 'causal-lm': max_new_tokens must be at most 1,024"),
    ({"search": {"alpha": {"low": 0.0, "high": 1.0}}, "fixed": {"alpha": 0.5}}, "both fixed and searched"),
]


@pytest.mark.parametrize("change, message", BAD)
def test_invalid_spaces_exit_2_with_one_line(change, message, tmp_path, capsys):
    raw = small_space(tmp_path / "teacher", tmp_path / "runs")
    raw.update(change)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["sweep", "--space", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "runs").exists()  # nothing half-written


def test_broken_yaml_and_missing_file(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("search:\n  alpha: {low: 0, high: 1\n")
    assert main(["sweep", "--space", str(path)]) == 2
    assert "not valid YAML (line" in capsys.readouterr().err
    assert main(["sweep", "--space", str(tmp_path / "nope.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_more_concurrent_trials_than_the_machine_can_place(tmp_path, capsys):
    import os

    (tmp_path / "teacher").mkdir()  # (the checks before Ray read only its config.json)
    (tmp_path / "teacher" / "config.json").write_text("{}")
    raw = small_space(tmp_path / "teacher", tmp_path / "runs",
                      resources={"workers": 2, "cpus_per_worker": 1, "concurrent_trials": (os.cpu_count() or 2)})
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["sweep", "--space", str(path)]) == 2
    assert "concurrent trials need" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_overlapping_p_min_and_p_max_ranges_are_refused_with_what_to_write_instead():
    """A sampled p_min above p_max used to be lowered to p_max: Optuna then learnt from a p_min
    the trial never used (issue 35). Overlapping ranges are refused; the start is searched as a
    fraction of the end instead, which the sampler sees as it was used."""
    from raykd.errors import ConfigError

    raw = small_space("x", "y")
    raw["search"] = {"p_min": {"low": 0.0, "high": 0.3}, "p_max": {"low": 0.2, "high": 0.5}}
    raw["fixed"] = {"rounds": 1}
    with pytest.raises(ConfigError, match=r"search.p_min \(up to 0.3\) overlaps search.p_max \(from 0.2\).*"
                                          r"search p_min_fraction: \{low: 0.0, high: [0-9.]+\} instead") as err:
        parse_space(raw)
    assert "\n" not in str(err.value)
    raw["search"] = {"p_min": {"low": 0.0, "high": 0.2}, "p_max": {"low": 0.2, "high": 0.5}}  # cannot cross: kept
    assert parse_space(raw).chain_config({"p_min": 0.2, "p_max": 0.2}).p_min == 0.2


def test_a_sampled_p_min_fraction_is_the_share_of_p_max_the_trial_runs():
    from raykd.errors import ConfigError

    raw = small_space("x", "y")
    raw["search"] = {"p_min_fraction": {"low": 0.0, "high": 1.0}, "p_max": {"low": 0.02, "high": 0.5},
                     "ffn_p_min_fraction": {"choices": [0.0, 0.5]}, "ffn_p_max": {"low": 0.0, "high": 0.5}}
    raw["fixed"] = {"rounds": 2}
    space = parse_space(raw)  # p_max may go below ChainConfig's default p_min (0.1): the fraction keeps it valid
    cfg = space.chain_config({"p_min_fraction": 0.5, "p_max": 0.4, "ffn_p_min_fraction": 0.5, "ffn_p_max": 0.3})
    assert (cfg.p_min, cfg.p_max, cfg.ffn_p_min, cfg.ffn_p_max) == (0.2, 0.4, 0.15, 0.3)
    assert space.chain_config({"p_min_fraction": 1.0, "p_max": 0.3, "ffn_p_min_fraction": 0.0, "ffn_p_max": 0.0}).p_min == 0.3
    for search, message in [
        ({"p_min_fraction": {"low": 0.0, "high": 1.5}}, "p_min_fraction is a fraction of p_max and must be in [0, 1]"),
        ({"p_min_fraction": {"low": 0.0, "high": 0.5}, "p_min": {"low": 0.0, "high": 0.1}},
         "search.p_min_fraction sets p_min (= p_min_fraction x p_max): remove p_min from search"),
    ]:
        raw["search"] = search
        with pytest.raises(ConfigError, match=re.escape(message)):
            parse_space(raw)
    raw["search"], raw["fixed"] = {"p_min_fraction": {"low": 0.0, "high": 0.5}}, {"p_min": 0.1}
    with pytest.raises(ConfigError, match=re.escape("remove p_min from fixed")):
        parse_space(raw)


def test_a_p_min_above_p_max_is_never_lowered_quietly():
    """A configuration the space did not produce (a stored study, a hand-written one) fails."""
    from raykd.errors import ConfigError

    raw = small_space("x", "y")
    raw["search"] = {"p_max": {"low": 0.2, "high": 0.5}}
    raw["fixed"] = {"p_min": 0.1, "rounds": 1}
    with pytest.raises(ConfigError, match=r"p_min \(0.3\) must not exceed p_max \(0.2\)"):
        parse_space(raw).chain_config({"p_min": 0.3, "p_max": 0.2})


def test_latency_batch_cannot_be_searched_while_speed_comes_from_the_table():
    """The table is timed on one batch: another batch's trials would be measured instead of
    predicted, and one front would mix the two (issue 35)."""
    from raykd.errors import ConfigError

    raw = small_space("x", "y")
    raw["search"] = {"alpha": {"low": 0.0, "high": 1.0}, "latency_batch": {"choices": [4, 8]}}
    raw["fixed"] = {"rounds": 1}
    with pytest.raises(ConfigError, match="latency_batch cannot be searched while speed.source is table"):
        parse_space(raw)
    raw["speed"] = {**raw["speed"], "source": "measured"}
    assert {p.name for p in parse_space(raw).search} == {"alpha", "latency_batch"}


@pytest.mark.parametrize("name", ["default.yaml", "default-2x.yaml", "paper.yaml", "asdiv-minilm.yaml", "asdiv-structured.yaml",
                                  "traces-smollm2.yaml"])
def test_stored_space_parses_back_to_the_same_space(name):
    """--resume re-validates the space stored in results/sweep.json (as JSON)."""
    import json
    from pathlib import Path

    import yaml

    space = load_space(Path(__file__).resolve().parents[2] / "search_spaces" / name)
    stored = json.loads(json.dumps(space.to_raw(), default=str))
    assert parse_space(stored) == space
    assert parse_space(yaml.safe_load(yaml.safe_dump(space.to_raw(), sort_keys=False))) == space  # written out as a YAML file


def test_worker_niceness_is_optional_and_kept():
    from raykd.search.space import Resources

    assert Resources().worker_niceness == 0  # normal priority unless asked (null: Ray's own 15)
    assert Resources(worker_niceness=None).worker_niceness is None


@pytest.mark.parametrize("speed, message", [
    ({"source": "guess"}, "speed.source must be one of"),
    ({"rounds": 0}, "speed.rounds must be an integer in 1..10000"),
    ({"round": 5}, "speed has unknown key(s) round"),
    ("fast", "speed must be a mapping"),
])
def test_the_speed_section_is_validated(speed, message):
    from raykd.search.space import load_space, parse_space
    from raykd.errors import ConfigError

    raw = {**load_space(None).to_dict(), "speed": speed}
    raw["search"] = {"alpha": {"low": 0.0, "high": 1.0}}
    raw["objectives"] = [{"metric": "accuracy", "mode": "max"}, {"metric": "speedup", "mode": "max"}]
    raw.pop("resources")
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_space(raw, "s.yaml")


def test_the_default_speed_objective_is_the_latency_table():
    from raykd.search.space import load_space

    from raykd.search.space import SPEED_DEFAULTS

    # the embedded default times its table (23 variants + 16 calibration shapes) in 30 rounds (its 15-minute budget)
    assert load_space(None).speed == {**SPEED_DEFAULTS, "rounds": 30}
    assert SPEED_DEFAULTS == {"source": "table", "rounds": 60, "retime_rounds": 30, "retime_sessions": 3, "table_cache": True,
                              "calibration": 16}


def test_paper_space_is_the_heads_only_method_and_the_default_searches_every_structure():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "search_spaces"
    paper = load_space(root / "paper.yaml")
    for p in paper.search:
        for value in p.bounds:
            cfg = paper.chain_config({p.name: value})
            assert cfg.prunes == {"heads": True, "ffn": False, "layers": False} and cfg.lambda3 == 0.0
    default = load_space(root / "default.yaml")
    searched = {p.name for p in default.search}
    assert {"p_max", "ffn_p_max", "layer_p_max", "lambda3"} <= searched
    widest = default.chain_config({"p_max": 0.75, "ffn_p_max": 0.75, "layer_p_max": 0.5})
    assert widest.prunes == {"heads": True, "ffn": True, "layers": True}


@pytest.mark.parametrize("low, high", [("ffn_p_min", "ffn_p_max"), ("layer_p_min", "layer_p_max")])
def test_every_structures_schedule_ranges_are_checked_together(tmp_path, low, high):
    space = small_space(tmp_path / "teacher", tmp_path)
    space["search"] = {low: {"low": 0.5, "high": 0.6}, high: {"low": 0.1, "high": 0.3}}
    with pytest.raises(Exception, match=f"{low} can never be <= {high}"):
        parse_space(space)
    space["search"] = {low: {"low": 0.0, "high": 0.4}, high: {"low": 0.1, "high": 0.3}}
    with pytest.raises(Exception, match=f"search {low}_fraction"):  # overlapping: refused, not capped
        parse_space(space)
    space["search"] = {f"{low}_fraction": {"low": 0.0, "high": 1.0}, high: {"low": 0.1, "high": 0.3}}
    cfg = parse_space(space).chain_config({f"{low}_fraction": 1.0, high: 0.2})
    assert getattr(cfg, low) == 0.2 == getattr(cfg, high)


@pytest.mark.parametrize("early_stop, reuses", [
    (None, True),
    ({"type": "mo-successive-halving", "eta": 3, "min_rounds": 1}, False),
    ({"accuracy_floor": 0.2, "after_round": 1}, False),
])
def test_trial_processes_are_reused_only_where_no_chain_is_stopped_mid_way(early_stop, reuses, tmp_path):
    """A chain stopped mid-way leaves its TorchTrainer running in a cached trial process, and the
    next trial's reset then fails (raykd.distributed.sweep.reuses_trial_actors)."""
    from raykd.distributed.sweep import reuses_trial_actors

    raw = small_space(tmp_path / "teacher", tmp_path / "runs", **({"early_stop": early_stop} if early_stop else {}))
    assert reuses_trial_actors(parse_space(raw, "test")) is reuses
