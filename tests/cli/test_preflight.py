"""Issue 33: a new sweep's inputs are checked before any work starts.

Every error here used to come from the teacher's Ray task after a cluster had started (11-20 s,
after Ray's banner), or after minutes of a library's retries, or (an impossible constraint)
after a whole sweep. Each case now asserts, like tests/cli/test_bad_input.py: exit code 2, one
`raykd: error:` line with the expected message, no traceback, a byte-identical workspace; and
that it came in under 5 s with no Ray started: no raylet among this process's children and no
session directory under the Ray temp directory (a fresh one per test, by RAY_TMPDIR, so Ray
processes of other runs on the machine cannot interfere).

Servers that are not there are free local ports (nothing listens on them), so the cases behave
the same with and without a network.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from sweep_spaces import small_space
from test_bad_input import assert_one_clear_error, run_cli, snapshot

LIMIT_S = 5.0


def free_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_children() -> list[str]:
    """Names of raylet/GCS processes below this one (psutil: Ray's vendored copy when not installed)."""
    try:
        import psutil
    except ImportError:
        import importlib.util
        import sys

        ray_dir = next(iter(importlib.util.find_spec("ray").submodule_search_locations))
        sys.path.append(str(Path(ray_dir) / "thirdparty_files"))
        import psutil

    names = []
    for child in psutil.Process().children(recursive=True):
        try:
            names.append(child.name())
        except psutil.Error:
            continue
    return [n for n in names if "raylet" in n or "gcs_server" in n]


@pytest.fixture
def ray_tmp(monkeypatch):
    """Ray's temp directory for this test alone (short: Ray's socket paths must fit 107 bytes)."""
    import shutil
    import tempfile

    where = Path(tempfile.mkdtemp(prefix="rk33-", dir="/tmp"))
    monkeypatch.setenv("RAY_TMPDIR", str(where))
    yield where
    shutil.rmtree(where, ignore_errors=True)


def no_ray_started(ray_tmp: Path) -> bool:
    return ray_children() == [] and list(ray_tmp.iterdir()) == []


@pytest.fixture
def ws(tmp_path, monkeypatch) -> Path:
    """A workspace with a stand-in teacher directory (preflight reads only its config.json)."""
    ws = tmp_path / "ws"
    (ws / "teacher").mkdir(parents=True)
    (ws / "teacher" / "config.json").write_text("{}")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return ws


def offline_hub(monkeypatch, _ws: Path | None = None) -> None:
    """The hub at a port where nothing listens; offline mode restored after the test."""
    import sys

    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    config = sys.modules.get("datasets.config")
    if config is not None:
        monkeypatch.setattr(config, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(config, "HF_DATASETS_OFFLINE", False)


def no_store(monkeypatch, _ws: Path) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")


def teacher_without_config(_m, ws: Path) -> None:
    (ws / "teacher" / "config.json").unlink()


def bad_rows(_m, ws: Path) -> None:
    (ws / "rows.json").write_text('[{"question": 1}]')


Case = tuple[str, dict[str, Any], list[str], Callable[..., None] | None, str]
CASES: list[Case] = [
    ("data-missing", {"data": "{ws}/nope.json"}, [], None, "data file not found"),
    ("data-malformed-spec", {"data": "asdiv-a:"}, [], None, "names no path"),
    ("data-malformed-rows", {"data": "{ws}/rows.json"}, [], bad_rows, "rows.json"),
    ("data-hf-offline", {"data": "hf:raykd-no-such/dataset"}, [], offline_hub, "cannot load hub dataset raykd-no-such/dataset"),
    ("data-s3-unreachable", {"data": "s3://raykd-no-such-bucket/rows.json"}, [], no_store,
     "data: cannot reach 127.0.0.1:"),
    ("data-format-s3-unreachable", {"data": "asdiv-a:s3://raykd-no-such-bucket/a.json"}, [], no_store, "data: cannot reach 127.0.0.1:"),
    ("data-rtl-prefixed", {"data": "\u202esynthetic:800"}, [], None, "data holds an invisible character U+202E (RIGHT-TO-LEFT OVERRIDE)"),
    ("teacher-path-missing", {"teacher": {"path": "{ws}/no-teacher"}}, [], None, "teacher.path {ws}/no-teacher does not exist"),
    ("teacher-path-not-a-model", {}, [], teacher_without_config, "has no config.json: not a saved teacher"),
    ("teacher-encoder-offline", {"teacher": {"encoder": "raykd-no-such/encoder"}}, [], offline_hub,
     "teacher.encoder 'raykd-no-such/encoder' is neither a local directory nor in the Hugging Face cache"),
    ("constraint-speedup-1e9", {"constraints": [{"metric": "speedup", "min": 1e9}]}, [], None,
     "constraint speedup >= 1e+09 can never hold: every chain keeps at least 50% of the prunable compute"),
    ("constraint-ideal-speedup", {"constraints": [{"metric": "ideal_speedup", "min": 9}]}, [], None, "can never hold"),
    ("constraint-accuracy-above-1", {"constraints": [{"metric": "accuracy", "min": 1.5}]}, [], None,
     "the task's accuracy is a fraction in [0, 1]"),
    ("constraint-accuracy-below-0", {"constraints": [{"metric": "test_accuracy", "max": -0.1}]}, [], None, "fraction in [0, 1]"),
    ("constraint-params-reduction-1", {"constraints": [{"metric": "params_reduction", "min": 1.0}]}, [], None, "can never hold"),
    ("constraint-latency-max-0", {"constraints": [{"metric": "latency_ms", "max": 0}]}, [], None, "latency_ms is always positive"),
    ("num-samples-1e30", {"num_samples": 10**30}, [], None, "num_samples must be an integer in 1..10000, got 1e+30"),
    ("rounds-1e9", {"fixed": {"rounds": 10**9}}, [], None, "fixed.rounds must be at most 100"),
    ("searched-epochs-huge", {"search": {"epochs_per_round": {"low": 1, "high": 10**6}}}, [], None,
     "search.epochs_per_round.high: epochs_per_round must be at most 10,000"),
    ("teacher-epochs-huge", {"teacher": {"preset": "tiny", "epochs": 10**8}}, [], None, "teacher.epochs must be at most 10,000"),
    ("workers-huge", {"resources": {"workers": 10**6}}, [], None, "resources.workers must be at most 4,096"),
    ("storage-s3-unreachable", {}, ["--storage", "s3://raykd-no-such-bucket/runs"], no_store,
     "--storage cannot reach 127.0.0.1:"),
    ("num-samples-flag-huge", {}, ["--num-samples", "1000000000000000000000000000000"], None, "argument --num-samples"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_a_bad_space_is_refused_in_seconds_before_ray_starts(case: Case, ws, ray_tmp, capsys, monkeypatch):
    _, change, extra, setup, message = case
    raw = small_space(ws / "teacher", ws / "runs")
    text = yaml.safe_dump({**raw, **change}, allow_unicode=True).replace("{ws}", str(ws))
    (ws / "space.yaml").write_text(text, encoding="utf-8")
    if setup is not None:
        setup(monkeypatch, ws)
    before = snapshot(ws)
    t0 = time.perf_counter()
    code, _, err = run_cli(capsys, ["sweep", "--space", str(ws / "space.yaml"), "--quiet", *extra])
    took = time.perf_counter() - t0
    assert_one_clear_error(code, err, message.replace("{ws}", str(ws)))
    assert took < LIMIT_S, f"refused after {took:.1f} s"
    assert no_ray_started(ray_tmp)
    assert snapshot(ws) == before


def test_an_address_where_nothing_listens_is_one_line_in_seconds(ws, ray_tmp, capsys):
    """It used to wait on Ray's connection retries for minutes (docs/errors.md's known gap)."""
    raw = small_space(ws / "teacher", ws / "runs")
    (ws / "space.yaml").write_text(yaml.safe_dump(raw))
    before = snapshot(ws)
    port = free_port()
    t0 = time.perf_counter()
    code, _, err = run_cli(capsys, ["sweep", "--space", str(ws / "space.yaml"), "--quiet", "--address", f"127.0.0.1:{port}"])
    took = time.perf_counter() - t0
    assert_one_clear_error(code, err, f"no Ray cluster answers at 127.0.0.1:{port} (Connection refused)")
    assert took < 30, f"refused after {took:.1f} s"  # (importing Ray's libraries included)
    assert no_ray_started(ray_tmp)
    assert snapshot(ws) == before


def test_a_good_space_passes_the_checks(ws):
    """The checks refuse only what cannot work: the test spaces and the shipped default pass."""
    from raykd.search.space import load_space, parse_space
    from raykd.search.preflight import check_new_sweep

    raw = small_space(ws / "teacher", ws / "runs", constraints=[{"metric": "speedup", "min": 1.5},
                                                                  {"metric": "accuracy", "min": 0.2}])
    check_new_sweep(parse_space(raw))
    check_new_sweep(load_space(None), storage_root=str(ws / "runs"))


def test_speedup_bound_follows_the_space_ratios():
    """The refusal threshold is SPEEDUP_SLACK over the FLOPs bound of the largest ratios."""
    from raykd.search.space import parse_space
    from raykd.errors import ConfigError
    from raykd.search.constraints import SPEEDUP_SLACK
    from raykd.search.preflight import check_constraints, largest_ratios

    raw = small_space("x", "y", search={"p_max": {"low": 0.1, "high": 0.5}, "ffn_p_max": {"low": 0.0, "high": 0.75},
                                        "layer_p_max": {"choices": [0.0, 0.5]}})
    space = parse_space({**raw, "constraints": [{"metric": "speedup", "min": 1.0}]})
    assert largest_ratios(space) == {"p_max": 0.5, "ffn_p_max": 0.75, "layer_p_max": 0.5}
    bound = SPEEDUP_SLACK / (0.5 * 0.25)  # 32x
    check_constraints(parse_space({**raw, "constraints": [{"metric": "speedup", "min": bound}]}))
    with pytest.raises(ConfigError, match="can never hold"):
        check_constraints(parse_space({**raw, "constraints": [{"metric": "speedup", "min": bound * 1.01}]}))
    never = parse_space({**raw, "fixed": {**raw["fixed"], "prune": False}, "constraints": [{"metric": "speedup", "min": 5}]})
    assert set(largest_ratios(never).values()) == {0.0}
    with pytest.raises(ConfigError, match="can never hold"):
        check_constraints(never)


def test_an_unknown_encoder_offline_is_one_line_without_hub_retries(tmp_path, capsys, monkeypatch):
    """`raykd teacher --encoder NAME` offline retried the hub 5 times (about 50 s) first."""
    offline_hub(monkeypatch)
    ws = tmp_path / "ws"
    ws.mkdir()
    before = snapshot(ws)
    t0 = time.perf_counter()
    code, _, err = run_cli(capsys, ["teacher", "--encoder", "raykd-no-such/encoder", "--data", "synthetic:40",
                                    "--out", str(ws / "t")])
    took = time.perf_counter() - t0
    assert_one_clear_error(code, err, "encoder 'raykd-no-such/encoder' is neither a local directory nor in the Hugging Face "
                                      "cache, and the hub (http://127.0.0.1:")
    assert took < LIMIT_S, f"refused after {took:.1f} s"
    assert snapshot(ws) == before


@pytest.mark.parametrize("option, message", [
    ("max_new_tokens=100000", "max_new_tokens must be at most 1,024, got 100,000"),
    ("max_prompt_len=1000000", "max_prompt_len must be at most 8,192"),
])
def test_causal_lm_options_have_upper_bounds_and_leave_nothing(option, message, tmp_path, capsys):
    """max_new_tokens=100000 on a tiny causal LM generated for hours and left a hidden .tmp behind."""
    ws = tmp_path / "ws"
    ws.mkdir()
    before = snapshot(ws)
    code, _, err = run_cli(capsys, ["teacher", "--task", "causal-lm", "--model", "tiny", "--task-option", option,
                                    "--data", "synthetic:40", "--epochs", "1", "--out", str(ws / "t")])
    assert_one_clear_error(code, err, message)
    assert snapshot(ws) == before and not any(p.name.startswith(".") for p in ws.iterdir())


QUIET_MARKS = ("Configuration for experiment", "started with configuration", "View detailed results", "Trial status",
               "Started a local Ray instance", "Training started", "╭")


@pytest.mark.ray
@pytest.mark.slow
def test_quiet_sweep_prints_no_ray_tables(tmp_path, capfd):
    """`raykd sweep --quiet` printed Tune's configuration table (and its "View detailed results"
    line) even at verbose=0; now only raykd's own summary reaches the console (file descriptors
    included: Ray's processes write to them directly)."""
    from raykd.cli import main

    raw = small_space(tmp_path / "unused", tmp_path / "runs", data="synthetic:200:7", num_samples=1,
                      speed={"rounds": 2, "calibration": 0, "retime_rounds": 0},
                      fixed={"rounds": 1, "steps_per_round": 2, "calib_batches": 1, "latency_repeats": 1})
    raw["teacher"] = {"preset": "tiny", "epochs": 1, "max_steps": 4}  # trained in the sweep: the least work
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(raw))
    capfd.readouterr()
    assert main(["sweep", "--space", str(tmp_path / "space.yaml"), "--quiet"]) == 0
    out, err = capfd.readouterr()
    for mark in QUIET_MARKS:
        assert mark not in out + err, (mark, out, err)
    assert "Pareto front" in out  # the summary raykd prints at the end
