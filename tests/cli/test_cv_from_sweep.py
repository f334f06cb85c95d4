"""`raykd cv --from RUN --trial ID`: a sweep's trial confirmed by cross-validation, its data, seed,
teacher recipe and chain settings taken from the stored sweep (read as data: the same confinement
as `pareto --retime` and `sweep --resume`), and every way of asking for it wrongly refused in one
line with nothing written.

The end-to-end check runs a real tiny sweep (local Ray, Tune, Optuna; one trial of one round, a
teacher trained from settings) and a tiny 2-fold CV of its trial; the same CV asked for by hand
with the sweep's settings is then accepted as the same run (nothing retrained). The refusals use a
sweep written with the results store's own writer (no Ray needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_bad_input import assert_refused_changing_nothing

from raykd.cli import main
from raykd.results.store import write_sweep_meta, write_trial

CV = ["--folds", "2", "--valid-fraction", "0.25", "--threads", "1", "--quiet"]
TINY_CHAIN = {"rounds": 1, "epochs_per_round": 1, "calib_batches": 1, "latency_repeats": 1, "latency_batch": 2,
              "p_min": 0.05, "test_every_round": False}
SPACE = {"name": "s", "task": "mwp", "data": "synthetic:40", "teacher": {"preset": "tiny", "epochs": 1},
         "search": {"alpha": {"low": 0.0, "high": 1.0}}, "fixed": TINY_CHAIN, "seed": 3, "num_samples": 1}


def _mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*")) if p.is_file()}


def stored_sweep(root: Path, space: dict | None = None, chain: dict | None = None, name: str = "s") -> Path:
    """A sweep directory as the results store writes one: sweep.json with its space, one trial t1."""
    sweep = root / name
    space = dict(space or SPACE)
    write_sweep_meta(sweep, {"name": name, "space_raw": space, "teacher": {"dir": str(sweep / "teacher"), "accuracy": 0.5},
                             "data": space.get("data"), "seed": space.get("seed", 0),
                             "objectives": [{"metric": "accuracy", "mode": "max"}, {"metric": "speedup", "mode": "max"}]})
    write_trial(sweep, {"sweep": name, "trial_id": "t1", "status": "complete", "hp_alpha": 0.25,
                        "chain_config_json": chain if chain is not None else {**TINY_CHAIN, "alpha": 0.25},
                        "accuracy": 0.5, "speedup": 1.2})
    return sweep


# --- refusals (no Ray) ---------------------------------------------------------------------------


BAD = [  # (id, space change or None, chain or None, extra argv, message)
    ("no-trial", None, None, ["--trial", None], "needs --trial ID"),
    ("unknown-trial", None, None, ["--trial", "nope"], "no trial 'nope' in sweep s (trials: t1)"),
    ("trial-without-from", None, None, ["--from", None], "--trial ID names a trial of the sweep given by --from RUN"),
    ("data-flag", None, None, ["--data", "synthetic:40"], "--data cannot be given with it"),
    ("teacher-flag", None, None, ["--epochs", "2", "--encoder", "minilm"], "--encoder, --epochs cannot be given with it"),
    ("config-flag", None, None, ["--config", "chain.yaml"], "--config cannot be given with it"),
    ("hub-model", {"task": "causal-lm", "teacher": {"model": "someone/model"}}, None, [],
     "teacher.model 'someone/model' is not one of raykd's packaged models"),
    ("beam", {"task": {"name": "mwp", "beam_size": 3}}, None, [], "task options"),
    ("import-path", {"task": "os:system"}, None, [], "its task is 'os:system'"),
    ("teacher-path", {"teacher": {"path": "teacher"}}, None, [], "its teacher was given by path"),
    ("hub-encoder", {"teacher": {"encoder": "someone/model"}}, None, [], "is not one of raykd's packaged encoders"),
    ("data-outside", {"data": "asdiv-a:/etc"}, None, [], "lies outside the sweep directory"),
    ("hub-data", {"data": "hf:someone/data"}, None, [], "is a hub dataset"),
    ("invalid-chain", None, {"invalid": "p_min above p_max"}, [], "trial 't1' records no valid chain settings"),
    ("bad-chain", None, {"p_max": 2.0}, [], "the chain settings of trial 't1': p_max must be in [0, 1)"),
    ("bad-set", None, None, ["--set", "test_every_round=false"], "test_every_round must stay true"),
    ("no-space", "drop", None, [], "records no search space"),
    ("trust-alone", None, None, ["--from", None, "--trial", None, "--data", "synthetic:40", "--trust-sweep"],
     "--trust-sweep is for --from RUN"),
    ("gpus-without-parallel", None, None, ["--gpus-per-fold", "1"], "are for parallel folds"),
    ("parallel-twice", None, None, ["--parallel", "--ray-address", "127.0.0.1:1"], "give one of them"),
    ("gpus-on-cpu", None, None, ["--parallel", "--gpus-per-fold", "1"], "with --device cpu: give --device cuda"),
]


@pytest.mark.parametrize("change, chain, extra, message", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_a_trial_cv_cannot_run_is_refused_in_one_line_writing_nothing(tmp_path, capsys, monkeypatch, change, chain,
                                                                      extra, message):
    monkeypatch.chdir(tmp_path)
    space = dict(SPACE)
    if isinstance(change, dict):
        space.update(change)
    sweep = stored_sweep(tmp_path, space, chain)
    if change == "drop":
        meta_path = sweep / "results" / "sweep.json"
        meta = json.loads(meta_path.read_text())
        del meta["space_raw"]
        meta_path.write_text(json.dumps(meta))
    argv = {"--from": str(sweep), "--trial": "t1"}
    rest: list[str] = []
    it = iter(extra)
    for flag in it:  # `--flag None` drops a flag; `--flag value` sets it
        if flag in argv:
            value = next(it)
            if value is None:
                del argv[flag]
            else:
                argv[flag] = value
        else:
            rest.append(flag)
    args = ["cv", *[x for kv in argv.items() for x in kv], *rest, *CV, "--out", str(tmp_path / "cv")]
    assert_refused_changing_nothing(capsys, tmp_path, args, message)
    assert not (tmp_path / "cv").exists()


def test_a_trusted_sweep_reads_its_data_where_the_space_said(tmp_path, capsys):
    """--trust-sweep lets data outside the sweep through (the refusal above says to pass it)."""
    from asdiv_rows import write_asdiv_dir

    data = write_asdiv_dir(tmp_path / "elsewhere", train=30, valid=10)
    sweep = stored_sweep(tmp_path, {**SPACE, "data": str(data)})
    out = tmp_path / "cv"
    argv = ["cv", "--from", str(sweep), "--trial", "t1", *CV, "--out", str(out), "--fold-limit", "1"]
    assert main(argv) == 2 and "lies outside the sweep directory" in capsys.readouterr().err
    assert main([*argv, "--trust-sweep"]) == 0
    assert json.loads((out / "cv.json").read_text())["settings"]["data"] == str(data)


# --- a real sweep, confirmed by CV ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_real_sweep(tmp_path_factory) -> Path:
    """A real sweep (local Ray, Tune, Optuna): a tiny teacher trained from settings, one trial of
    one round. (The session's `real_sweep` is given its teacher by path, which cv cannot retrain.)"""
    from raykd.distributed.sweep import run_sweep
    from raykd.search.space import parse_space

    storage = tmp_path_factory.mktemp("sweeps")
    raw = {**SPACE, "storage": str(storage), "fixed": {**TINY_CHAIN, "steps_per_round": 2, "latency_batch": 2},
           "sampler": {"type": "random", "seed": 0}, "speed": {"source": "measured", "retime_rounds": 0},
           "resources": {"workers": 1, "cpus_per_worker": 1, "concurrent_trials": 1}}
    outcome = run_sweep(parse_space(raw), progress=False, log=lambda _m: None)
    return Path(outcome.root)


@pytest.mark.ray
@pytest.mark.slow
def test_a_real_sweeps_trial_is_confirmed_by_cv_with_its_own_settings(tiny_real_sweep, tmp_path, capsys):
    from raykd.analysis import open_sweep
    from raykd.method.config import ChainConfig

    sw = open_sweep(tiny_real_sweep)
    (tid,) = list(sw.df["trial_id"])
    out = tmp_path / "cv"
    assert main(["cv", "--from", str(tiny_real_sweep), "--trial", tid, *CV, "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    stored = json.loads((out / "cv.json").read_text())
    settings = stored["settings"]
    trial_chain = json.loads(sw.trial(tid)["chain_config_json"])
    assert settings["chain"] == ChainConfig.from_dict({**trial_chain, "test_every_round": True}).to_dict()
    assert settings["chain"]["alpha"] == pytest.approx(float(sw.trial(tid)["hp_alpha"]))  # the searched value
    assert settings["data"] == "synthetic:40" and settings["seed"] == 3  # the sweep's data and seed
    assert settings["teacher"]["spec"]["preset"] == "tiny" and settings["teacher"]["fit"]["epochs"] == 1
    assert settings["teacher"]["fit"]["seed"] == 3
    assert stored["from"] == {"sweep": sw.uri, "trial": tid, "status": "complete", "set": [], "sweep_seed": 3}
    assert printed["pooled"]["n"] == 40 and (out / "pooled.json").is_file()

    # the same CV asked for by hand, settings copied from the sweep, is the same run: accepted, nothing retrained
    chain = tmp_path / "chain.yaml"
    import yaml

    chain.write_text(yaml.safe_dump({**trial_chain, "test_every_round": True}))
    before = _mtimes(out)
    by_hand = ["cv", "--data", "synthetic:40", "--seed", "3", "--preset", "tiny", "--epochs", "1", "--config", str(chain),
               *CV, "--out", str(out)]
    assert main(by_hand) == 0
    assert {k: v for k, v in _mtimes(out).items() if k != "pooled.json"} == \
        {k: v for k, v in before.items() if k != "pooled.json"}
    # ... and --set over the trial's settings is another run, refused on the same directory
    code = main(["cv", "--from", str(tiny_real_sweep), "--trial", tid, *CV, "--out", str(out), "--set", "alpha=0.9"])
    assert code == 2 and "alpha" in capsys.readouterr().err
