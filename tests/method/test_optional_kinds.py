"""Optional structure kinds, activated by use (`raykd.method.optional_kinds`): the hidden size is
pruned from a chain YAML (`raykd chain`), `raykd prune --hidden-ratio`, a search space and a trial's
worker, and a hidden-pruned model reloads in a fresh process; an input that does not name the kind
leaves every registry, config and default exactly as before, and a near miss stays an unknown
setting. Every test leaves the kind unregistered (`optional_off`)."""

from __future__ import annotations

import json
import subprocess
import sys

import optuna
import pytest
from sweep_spaces import small_space

from raykd.cli import main
from raykd.cli.chain import load_chain_config
from raykd.distributed.worker import trial_chain_config
from raykd.errors import ConfigError
from raykd.measure.latency.registry import latency_names
from raykd.method.config import ChainConfig
from raykd.method.importance.registry import importance_of
from raykd.method.optional_kinds import (
    OPTIONAL_KINDS,
    activate_for_model_dir,
    activate_for_settings,
    deactivate,
    is_active,
    kinds_named_by,
)
from raykd.method.schedule import units_removed_by
from raykd.search.space import parse_space
from raykd.structures.hidden import find_hidden, hidden_map
from raykd.structures.registry import structure_names
from raykd.task.io import load_solver

FAST = ("rounds: 1\np_min: 0.0\np_max: 0.0\nepochs_per_round: 1\nsteps_per_round: 2\ncalib_batches: 1\n"
        "calib_batch_size: 16\nlatency_batch: 2\nlatency_repeats: 1\npatience: 1\n")


def _registries() -> tuple:
    """Everything a registration would change, as comparable values."""
    importance = []
    for name in ("heads", "ffn", "layers", "hidden"):
        try:
            importance.append(importance_of(name).name)
        except ConfigError:
            pass
    return structure_names(), latency_names(), tuple(importance), tuple(ChainConfig().to_dict())


@pytest.fixture
def optional_off():
    """No optional kind registered before or after the test (a leaked registration would change
    every later test's configs and records)."""
    for name in OPTIONAL_KINDS:
        deactivate(name)
    try:
        yield
    finally:
        for name in OPTIONAL_KINDS:
            deactivate(name)


def test_only_exact_names_from_the_fixed_table_activate(optional_off):
    # data chooses a kind by an exact setting name, never by a path to import
    assert kinds_named_by(["raykd.structures.hidden:register_hidden_structure", "hidden", "HIDDEN_P_MAX",
                           "hidden_p_mx", "toy_p_max", 3]) == ()
    assert kinds_named_by({"hidden_p_max": 0.1}) == kinds_named_by(["hidden_p_min_fraction"]) == ("hidden",)
    assert not is_active("hidden")


def test_inputs_that_do_not_name_an_optional_kind_change_nothing(optional_off, quick_teacher_dir, tmp_path):
    before = _registries()
    assert "hidden" not in before[0] and "hidden" not in before[1] and not any(k.startswith("hidden_") for k in before[3])
    cfg = tmp_path / "chain.yaml"
    cfg.write_text(FAST + "ffn_p_max: 0.25\n")
    config = load_chain_config(str(cfg), ["p_max=0.1"])
    parse_space(small_space(quick_teacher_dir, tmp_path / "runs"))
    assert activate_for_settings(config.to_dict()) == ()
    assert activate_for_model_dir(quick_teacher_dir) == ()  # an unpruned model's config.json has no hidden_map
    assert "hidden_map" not in json.loads((quick_teacher_dir / "config.json").read_text())
    assert _registries() == before
    assert config.plugin_settings == () and set(config.to_dict()) == set(ChainConfig().to_dict())


FRESH = """
import json
from raykd.cli import main  # every command module
from raykd.cli.chain import load_chain_config
from raykd.measure.latency.registry import latency_names
from raykd.search.space import load_space
from raykd.structures.registry import structure_names
config = load_chain_config(None, ["ffn_p_max=0.25"])
space = load_space(None)  # the embedded default space
space.chain_config({})
print(json.dumps([structure_names(), latency_names(), sorted(config.to_dict())]))
"""


def test_a_fresh_process_registers_no_optional_kind_for_default_inputs():
    done = subprocess.run([sys.executable, "-c", FRESH], check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    kinds, latency, settings = json.loads(done.stdout)
    assert kinds == latency == ["heads", "ffn", "layers"]
    assert settings == sorted(ChainConfig().to_dict()) and not any(k.startswith("hidden_") for k in settings)


def test_a_near_miss_stays_an_unknown_chain_setting(optional_off, quick_teacher_dir, tmp_path, capsys):
    cfg = tmp_path / "typo.yaml"
    cfg.write_text(FAST + "hidden_p_mx: 0.25\n")
    out = tmp_path / "chain"
    assert main(["chain", "--teacher", str(quick_teacher_dir), "--data", "synthetic:400:7", "--config", str(cfg),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"raykd: error: {cfg}: unknown chain setting(s): hidden_p_mx"]
    assert not out.exists() and not is_active("hidden")
    with pytest.raises(ConfigError, match=r"search\.hidden_p_mx: not a chain setting"):
        parse_space(small_space(quick_teacher_dir, tmp_path / "runs", search={"hidden_p_mx": {"low": 0.0, "high": 0.5}}))


def test_a_chain_yaml_prunes_the_hidden_size_and_the_student_reloads_in_a_fresh_process(
        optional_off, quick_teacher_dir, tmp_path, capsys):
    width = find_hidden(load_solver(quick_teacher_dir)[0]).width
    cfg = tmp_path / "chain.yaml"
    cfg.write_text(FAST + "hidden_p_min: 0.25\nhidden_p_max: 0.25\n")
    out = tmp_path / "chain"
    assert main(["chain", "--teacher", str(quick_teacher_dir), "--data", "synthetic:400:7", "--config", str(cfg),
                 "--out", str(out), "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)["rounds"]
    gone = units_removed_by(0.25, width)
    assert record["hidden_removed_now"] == gone and record["hidden_channels_total"] == width - gone
    student = out / "round-01"
    saved = json.loads((student / "config.json").read_text())["hidden_map"]
    assert saved["encoder_hidden"]["width"] == width and len(saved["encoder_hidden"]["kept"]) == width - gone
    assert is_active("hidden") and "hidden" in latency_names()  # every side, from the config alone

    deactivate("hidden")  # as a new process: `raykd eval` rebuilds the student from its config.json alone
    done = subprocess.run([sys.executable, "-m", "raykd", "eval", "--model", str(student), "--data", "synthetic:16:3",
                           "--json", "--threads", "1"], check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["n"] == 16


def test_raykd_prune_removes_hidden_channels_and_eval_reloads_them(optional_off, quick_teacher_dir, tmp_path, capsys):
    width = find_hidden(load_solver(quick_teacher_dir)[0]).width
    out = tmp_path / "pruned"
    assert main(["prune", "--model", str(quick_teacher_dir), "--ratio", "0", "--hidden-ratio", "0.5",
                 "--calib", "synthetic:32:1", "--calib-batches", "1", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["removed_hidden"] == units_removed_by(0.5, width)
    assert json.loads((out / "config.json").read_text())["prune"]["hidden_ratio"] == 0.5

    deactivate("hidden")  # loading alone activates it again (in-process `raykd eval`)
    assert main(["eval", "--model", str(out), "--data", "synthetic:8:3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 8
    model = load_solver(out)[0]
    assert len(hidden_map(model)["encoder_hidden"]["kept"]) == width - units_removed_by(0.5, width)


def test_a_space_searches_hidden_p_max_and_a_trial_carries_it(optional_off, quick_teacher_dir, tmp_path):
    raw = small_space(quick_teacher_dir, tmp_path / "runs",
                      search={"hidden_p_max": {"low": 0.0, "high": 0.5}, "hidden_p_min_fraction": {"low": 0.0, "high": 1.0}})
    space = parse_space(raw)
    assert is_active("hidden")
    dists = {p.name: p.to_optuna() for p in space.search}
    study = optuna.create_study(directions=["maximize", "maximize"], sampler=optuna.samplers.RandomSampler(seed=3))
    sampled = study.ask(dists).params
    assert 0.0 <= sampled["hidden_p_max"] <= 0.5

    deactivate("hidden")  # a trial's actor starts without it: the sampled names bring it back
    config = space.chain_config(sampled)
    assert config.setting("hidden_p_max") == pytest.approx(sampled["hidden_p_max"])
    assert config.setting("hidden_p_min") == pytest.approx(sampled["hidden_p_min_fraction"] * sampled["hidden_p_max"])
    assert config.prunes["hidden"] == (sampled["hidden_p_max"] > 0)
    assert {"hidden_p_min", "hidden_p_max"} <= set(config.to_dict())


def test_a_train_worker_activates_the_kinds_its_trial_names(optional_off):
    chain = {**ChainConfig(rounds=2).to_dict(), "hidden_p_min": 0.1, "hidden_p_max": 0.25}
    with pytest.raises(ConfigError, match=r"unknown chain setting\(s\): hidden_p_max, hidden_p_min"):
        ChainConfig.from_dict(chain)  # what a worker did before: the registration lived only in the driver
    config = trial_chain_config(chain)
    assert config.setting("hidden_p_max") == 0.25 and config.prunes["hidden"]
    assert is_active("hidden") and "hidden" in latency_names() and importance_of("hidden").name == "hidden"
    assert ChainConfig.from_dict(config.to_dict()) == config
