"""The Ray-free Optuna pieces of a sweep: the sampler a space asks for, and its distributions."""

from pathlib import Path

import optuna
import pytest
from sweep_spaces import small_space

from raykd.distributed.space import tune_space
from raykd.search.space import load_space, make_sampler, parse_space

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _space(**overrides):
    return parse_space(small_space("teacher", "runs", **overrides))


def _told_params(sampler, space, n):
    """(params of the first `n` trials of a fresh two-objective study, the study); each trial is
    told a value, so a model-based sampler has something to fit once its start-up is over."""
    study = optuna.create_study(directions=["maximize", "maximize"], sampler=sampler)
    dists = {p.name: p.to_optuna() for p in space.search}
    out = []
    for _ in range(n):
        trial = study.ask(fixed_distributions=dists)
        out.append(trial.params)
        study.tell(trial, [trial.params["alpha"], -trial.params["alpha"]])
    return out, study


def _first_params(sampler, space, n=3):
    """The parameters `sampler` proposes for the first `n` trials of a fresh two-objective study."""
    return _told_params(sampler, space, n)[0]


@pytest.mark.parametrize("kind, cls", [("tpe", optuna.samplers.TPESampler), ("nsga2", optuna.samplers.NSGAIISampler),
                                       ("gp", optuna.samplers.GPSampler), ("random", optuna.samplers.RandomSampler)])
def test_sampler_type_follows_the_space(kind, cls):
    assert type(make_sampler(_space(sampler={"type": kind}))) is cls


def test_tpe_samples_at_random_for_exactly_the_space_s_startup_trials():
    space = _space(sampler={"type": "tpe", "n_startup_trials": 3, "seed": 0})
    tpe, _ = _told_params(make_sampler(space), space, 5)
    rnd, _ = _told_params(optuna.samplers.RandomSampler(seed=0), space, 5)
    assert tpe[:3] == rnd[:3]  # start-up: the seeded random sampler's proposals ...
    assert tpe[3] != rnd[3]  # ... then the model's (3 start-up trials, not more)
    none_space = _space(sampler={"type": "tpe", "n_startup_trials": 0, "seed": 0})
    assert _told_params(make_sampler(none_space), none_space, 2)[0][1] != rnd[1]


def test_gp_starts_at_random_then_proposes_the_same_model_points_every_time():
    """The default sweep's sampler: its first n_startup_trials are the seeded random sampler's, the
    rest come from the fitted GP and, fitted to the same history, are the same in every run (the
    default sweep's stable front rests on it)."""
    space = _space(sampler={"type": "gp", "n_startup_trials": 3, "seed": 0})
    gp, _ = _told_params(make_sampler(space), space, 5)
    rnd, _ = _told_params(optuna.samplers.RandomSampler(seed=0), space, 5)
    assert gp[:3] == rnd[:3]
    assert gp[3] != rnd[3] and gp[4] != rnd[4]
    assert _told_params(make_sampler(space), space, 5)[0] == gp  # to the last digit


def test_the_default_sweep_uses_gp_and_a_space_without_a_sampler_tpe():
    default = load_space(Path(__file__).resolve().parents[2] / "search_spaces" / "default.yaml")
    assert default.sampler["type"] == "gp" and type(make_sampler(default)) is optuna.samplers.GPSampler
    assert load_space(None).sampler == default.sampler  # the embedded copy
    raw = small_space("teacher", "runs")
    raw.pop("sampler", None)
    assert type(make_sampler(parse_space(raw))) is optuna.samplers.TPESampler


def test_nsga2_breeds_generations_of_the_space_s_population_size():
    space = _space(sampler={"type": "nsga2", "population_size": 6, "seed": 0})
    _, study = _told_params(make_sampler(space), space, 8)
    generations = [next(v for k, v in t.system_attrs.items() if k.endswith("generation")) for t in study.trials]
    assert generations == [0] * 6 + [1] * 2


@pytest.mark.parametrize("kind", ["tpe", "nsga2", "random"])
def test_seed_comes_from_the_space_unless_given(kind):
    space = _space(sampler={"type": kind, "seed": 3})
    same = _first_params(make_sampler(space), space)
    assert _first_params(make_sampler(space), space) == same  # seeded: reproducible
    assert _first_params(make_sampler(space, seed=3), space) == same
    assert _first_params(make_sampler(space, seed=4), space) != same  # the seed argument is used
    assert _first_params(make_sampler(_space(sampler={"type": kind, "seed": 4})), space) != same


def test_sampler_seed_defaults_to_the_space_seed():
    raw = small_space("teacher", "runs", seed=7)
    raw["sampler"] = {"type": "random"}
    space = parse_space(raw)
    assert _first_params(make_sampler(space), space) == _first_params(make_sampler(space, seed=7), space)


def test_to_optuna_matches_bounds_log_and_choices():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space = _space(search={"alpha": {"low": 0, "high": 1}, "n": {"low": 0.5, "high": 3.0, "log": True},
                           "min_heads_per_block": {"low": 1, "high": 3}, "importance": {"choices": ["combined", "random"]}})
    d = {p.name: p.to_optuna() for p in space.search}
    assert d["alpha"] == FloatDistribution(0.0, 1.0) and not d["alpha"].log
    assert d["n"] == FloatDistribution(0.5, 3.0, log=True)
    assert d["min_heads_per_block"] == IntDistribution(1, 3)  # both ends included, like tune.randint(1, 4)
    assert d["importance"] == CategoricalDistribution(["combined", "random"])
    for params in _first_params(optuna.samplers.RandomSampler(seed=0), space, n=20):
        assert 0.0 <= params["alpha"] <= 1.0 and 0.5 <= params["n"] <= 3.0
        assert params["min_heads_per_block"] in (1, 2, 3) and params["importance"] in ("combined", "random")
        space.chain_config(params)  # every sample makes a valid chain


def test_to_optuna_is_what_ray_makes_of_to_tune():
    """The sweep samples through Ray's OptunaSearch; a Ray-free study must sample the same space."""
    pytest.importorskip("ray.tune")
    from ray.tune.search.optuna import OptunaSearch

    for name in ("default.yaml", "paper.yaml", "asdiv-minilm.yaml", "asdiv-structured.yaml", "traces-smollm2.yaml"):
        space = load_space(Path(__file__).resolve().parents[2] / "search_spaces" / name)
        ray_side = dict(OptunaSearch.convert_search_space(tune_space(space)))
        assert ray_side == {p.name: p.to_optuna() for p in space.search}, name
    space = _space(search={"alpha": {"low": 0.0, "high": 1.0}, "min_heads_per_block": {"low": 0, "high": 4},
                           "importance": {"choices": ["combined", "random"]}})
    ray_side = dict(OptunaSearch.convert_search_space(tune_space(space)))
    assert ray_side == {p.name: p.to_optuna() for p in space.search}


def test_make_searcher_uses_make_sampler(tmp_path):
    pytest.importorskip("ray.tune")
    from raykd.distributed.sweep import make_searcher

    space = _space(sampler={"type": "tpe", "seed": 5, "n_startup_trials": 2})
    limiter = make_searcher(space, tmp_path / "study.journal", "t")
    assert limiter.set_search_properties(None, None, tune_space(space))  # as Tuner does
    proposed = [limiter.suggest(f"trial-{i}") for i in range(1)]  # through Ray's public searcher API
    expected = _first_params(make_sampler(space, seed=5), space, n=1)
    assert [{k: c[k] for k in expected[0]} for c in proposed] == expected


def _searcher_suggestions(searcher, space, n):
    """The first `n` configurations `searcher` suggests, each told back a value (alpha, -alpha)."""
    out = []
    for i in range(n):
        config = searcher.suggest(f"t{i}")
        out.append(config)
        searcher.on_trial_complete(f"t{i}", {m: (config["alpha"] if k == 0 else -config["alpha"])
                                             for k, m in enumerate(space.metrics)} | {"chain_done": True})
    return out


@pytest.mark.parametrize("kind", ["gp", "tpe", "random"])
def test_raykd_searcher_suggests_what_ray_s_optuna_search_did(tmp_path, kind):
    """The sweep's searcher drives Optuna through its public ask/tell; for the same sampler,
    space and history it proposes exactly what Ray's OptunaSearch (which raykd used through its
    private fields) proposed, so sweeps keep their configurations."""
    from ray.tune.search.optuna import OptunaSearch

    from raykd.distributed.searcher import make_searcher
    from raykd.distributed.worker import CHAIN_DONE

    assert CHAIN_DONE == "chain_done"
    space = _space(sampler={"type": kind, "n_startup_trials": 2, "seed": 3})
    ours = make_searcher(space, tmp_path / "ours.log", "ours").searcher
    ray_s = OptunaSearch(metric=space.metrics, mode=space.modes, sampler=make_sampler(space), study_name="ray")
    ray_s.set_search_properties(None, None, tune_space(space))
    assert _searcher_suggestions(ours, space, 4) == _searcher_suggestions(ray_s, space, 4)


def test_raykd_searcher_tells_a_stopped_chain_pruned_and_saves_its_pending_trials(tmp_path):
    from raykd.distributed.searcher import make_searcher

    space = _space(sampler={"type": "random", "seed": 0})
    searcher = make_searcher(space, tmp_path / "j.log", "s").searcher
    searcher.suggest("a")
    searcher.suggest("b")
    searcher.on_trial_complete("a", {m: 0.5 for m in space.metrics} | {"chain_done": False})
    study = optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.log"))))
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.RUNNING]
    searcher.save(str(tmp_path / "state.pkl"))
    again = make_searcher(space, tmp_path / "j.log", "s").searcher
    again.restore(str(tmp_path / "state.pkl"))
    again.on_trial_complete("b", {m: 0.7 for m in space.metrics} | {"chain_done": True})
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.COMPLETE]
    assert study.trials[1].values == [0.7] * len(space.metrics)
