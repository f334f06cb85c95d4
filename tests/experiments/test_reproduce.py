"""`raykd reproduce`: the experiment plan, the tables, and a real end-to-end run on a tiny teacher."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from raykd.errors import ConfigError
from raykd.experiments.plan import plan_experiments
from raykd.experiments.tables import build_tables, render_markdown
from raykd.experiments.plan import EXPERIMENTS, TABLES
from raykd.experiments.run import ReproductionResult
from raykd.method.config import ChainConfig

DATA = "synthetic:400:7"


def test_plan_runs_shared_variants_once_and_table1_first():
    names = [e.name for e in plan_experiments(list(TABLES))]
    assert names[:2] == ["progressive", "alpha-0.5"]
    assert len(names) == len(set(names)) == 12  # 1 chain + 5 alphas + 6 ablations of their own
    assert {n for _, n in TABLES["4"]} <= set(names)


def test_plan_of_one_table_and_unknown_table():
    assert [e.name for e in plan_experiments(["3a"])] == ["alpha-0.5", "alpha-0.0", "alpha-0.3", "alpha-0.7", "alpha-1.0"]
    with pytest.raises(ConfigError, match="unknown table"):
        plan_experiments(["5"])


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_every_experiment_is_a_valid_chain_config(name):
    config = ChainConfig.from_dict({**ChainConfig().to_dict(), **EXPERIMENTS[name].overrides})
    if name == "progressive":
        from raykd.method.schedule import pruning_ratio

        ratios = [pruning_ratio(r, config.rounds, config.p_min, config.p_max, config.n) for r in (1, 2, 3)]
        assert ratios == pytest.approx([0.2, 0.25, 0.3])
    elif name == "no-pruning":
        assert not config.prune
    else:
        assert config.rounds == 1 and config.p_min == config.p_max == 0.25


def _record(ratio: float, acc: float, test: float, speedup: float = 1.2) -> dict:
    return {"round": 1, "ratio": ratio, "heads_total": 9, "heads_original": 12, "accuracy": acc, "test_accuracy": test,
            "params_reduction": 0.05, "flops_reduction": 0.08, "speedup": speedup, "ideal_speedup": 1.1, "memory_reduction": 0.04}


def _metrics(acc: float) -> dict:
    by = {"simple": {"n": 4, "accuracy": acc}, "medium": {"n": 0, "accuracy": 0.0}, "complex": {"n": 1, "accuracy": 0.0}}
    return {"accuracy": acc, "equation_accuracy": acc, "n": 5, "by_complexity": by}


def test_tables_quote_the_paper_for_math23k_and_compute_deltas():
    result = ReproductionResult("math23k:x", "math23k", {"valid": _metrics(0.5), "test": _metrics(0.6)})
    result.experiments["alpha-0.5"] = {"records": [_record(0.25, 0.5, 0.60)]}
    result.experiments["random"] = {"records": [_record(0.25, 0.4, 0.55)]}
    result.experiments["alpha-1.0"] = {"records": [_record(0.25, 0.4, 0.45)]}
    result.evaluations["teacher"] = _metrics(0.6)
    tables = build_tables(result)
    t4 = {row[0]: row for row in tables["4"]["rows"]}
    assert t4["random"][1:3] == ["55.0 [23.1–88.2]", "-5.0"]  # with its 95% Wilson interval (n 5: the teacher's test n)
    assert t4["random"][-2:] == ["81.5", "-2.5"]  # paper: random 81.5 vs full 84.0
    assert t4["norm-only"][-2] == "71.2"
    assert t4["full"][2] == "+0.0"
    t3a = {row[0]: row for row in tables["3a"]["rows"]}
    assert t3a["0.5"][1] == "60.0 [23.1–88.2]" and t3a["0.5"][4] == "20.0" and t3a["0.5"][5] == "84.0"
    assert tables["1"]["rows"][0][-2] == "84.4"
    assert tables["3b"]["rows"][0][3] == "– (n=0)"
    front = [row[0] for row in tables["front"]["rows"]]
    assert front == ["alpha-0.5 r1 (25%)"]  # 50% valid at 1.2x dominates the teacher (50% at 1.0x) and the rest
    md = render_markdown(tables)
    assert "### Table 4" in md and "| random | 55.0 [23.1–88.2] | -5.0 |" in md and "Wilson interval" in md


def test_tables_of_a_data_set_the_paper_does_not_cover_have_no_quotes():
    result = ReproductionResult("synthetic:10", "synthetic", {"valid": _metrics(0.5), "test": _metrics(0.6)})
    result.experiments["alpha-0.5"] = {"records": [_record(0.25, 0.5, 0.60)]}
    t3a = build_tables(result, ["3a"])["3a"]
    assert t3a["rows"][0][-1] == "–"
    t1 = build_tables(result, ["1"])["1"]
    assert [r[0] for r in t1["rows"]] == ["0% (teacher)"] and t1["rows"][0][-2:] == ["–", "–"]
    assert "(not run)" in render_markdown(build_tables(ReproductionResult("s", "synthetic", result.teacher), ["3a"]))


def _reproduce(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raykd", "reproduce", *args], capture_output=True, text=True, timeout=900)


def test_reproduce_end_to_end_then_resume(tiny_teacher_dir: Path, tmp_path: Path):
    out = tmp_path / "rep"
    common = ["--data", DATA, "--teacher", str(tiny_teacher_dir), "--out", str(out), "--tables", "1", "3b", "--threads", "1",
              "--set", "epochs_per_round=1", "--set", "steps_per_round=4", "--set", "latency_repeats=2", "--set", "calib_batches=1"]
    first = _reproduce(*common, "--json")
    assert first.returncode == 0, first.stderr[-2000:]
    tables = json.loads(first.stdout)["tables"]
    rows = tables["1"]["rows"]
    assert [r[0] for r in rows] == ["0% (teacher)", "20%", "25%", "30%"]
    import re

    interval = r"\d+\.\d \[\d+\.\d–\d+\.\d\]"  # accuracy with its 95% Wilson interval
    assert re.fullmatch(interval, rows[0][2]) and re.fullmatch(interval, rows[0][3])  # the teacher: no test against itself
    for row in rows[1:]:  # every student: interval and the paired test against the teacher, on test and valid
        assert re.fullmatch(interval + r" p=\d\.\d\d", row[2]) and re.fullmatch(interval + r" p=\d\.\d\d", row[3]), row
    heads = [int(r[1].split("/")[0]) for r in rows[1:]]
    assert heads == sorted(heads, reverse=True) and heads[0] < int(rows[1][1].split("/")[1])
    assert [r[0].split(" ")[0] for r in tables["3b"]["rows"]] == ["teacher", "20%", "25%", "30%"]
    saved = json.loads((out / "results.json").read_text())
    records = saved["experiments"]["progressive"]["records"]
    assert [round(r["ratio"], 2) for r in records] == [0.2, 0.25, 0.3]
    assert all(r["shared_stats"] for r in records[:1])  # round 1 reuses the teacher statistics computed once
    assert (out / "structure_stats.json").is_file() and "Table 1" in (out / "tables.md").read_text()
    assert not (out / "head_stats.json").exists()  # the legacy name is read (older runs), never written

    second = _reproduce(*common)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "progressive: done earlier, 3 round(s)" in second.stdout
    assert json.loads((out / "results.json").read_text())["experiments"]["progressive"]["records"] == records

    # other settings, or another teacher: refused before anything runs, naming what differs
    stored = (out / "results.json").read_bytes()
    changed = _reproduce(*common, "--set", "epochs_per_round=2")
    assert changed.returncode == 2 and "progressive (epochs_per_round: 1 -> 2)" in changed.stderr, changed.stderr[-2000:]
    from raykd.cli import main

    other = tmp_path / "other-teacher"
    assert main(["prune", "--model", str(tiny_teacher_dir), "--ratio", "0.25", "--calib", "synthetic:40", "--out", str(other)]) == 0
    swapped = [str(other) if a == str(tiny_teacher_dir) else a for a in common]
    for extra in ([], ["--remeasure", "--repeats", "2"]):
        proc = _reproduce(*swapped, *extra)
        assert proc.returncode == 2 and "teacher: " in proc.stderr and "cannot be resumed" in proc.stderr, proc.stderr[-2000:]
    assert (out / "results.json").read_bytes() == stored

    again = _reproduce(*common, "--remeasure", "--repeats", "2")
    assert again.returncode == 0, again.stderr[-2000:]
    speed = json.loads((out / "results.json").read_text())["speed"]
    assert sorted(speed["paired_speedup"]) == ["progressive/round-01", "progressive/round-02", "progressive/round-03"]
    assert speed["repeats"] == 2 and all(v > 0 for v in speed["paired_speedup"].values())
    assert "re-timed together" in (out / "tables.md").read_text()

    (out / "tables.md").unlink()
    rendered = _reproduce("--out", str(out), "--render", "--tables", "1")
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    assert "| 30% |" in (out / "tables.md").read_text() and "Table 3b" not in (out / "tables.md").read_text()


def test_render_needs_a_results_file(tmp_path: Path):
    proc = _reproduce("--out", str(tmp_path / "nothing"), "--render")
    assert proc.returncode == 2 and "results.json does not exist" in proc.stderr
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text('{"data": 1}')
    proc = _reproduce("--out", str(tmp_path / "bad"), "--render")
    assert proc.returncode == 2 and "not a reproduction's results file" in proc.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--tables", "9"], "invalid choice"),
        (["--set", "alpha=2"], "alpha must be in [0, 1]"),
        (["--teacher", "/nonexistent/teacher"], "/nonexistent/teacher"),
    ],
)
def test_reproduce_bad_input_is_one_line_exit_2(tiny_teacher_dir: Path, tmp_path: Path, args, message):
    base = {"--data": DATA, "--teacher": str(tiny_teacher_dir), "--out": str(tmp_path / "o")}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value if flag != "--set" else base.get(flag, value)
    argv = [x for kv in base.items() for x in kv]
    if "--set" in args:
        argv += ["--set", args[1]]
    proc = _reproduce(*argv)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert not (tmp_path / "o" / "results.json").exists()


def test_reproduction_writes_structure_stats_and_still_reads_an_older_head_stats(tiny_teacher_dir: Path, tmp_path: Path):
    """A new reproduction writes `structure_stats.json` (never the legacy `head_stats.json`); a
    directory an older raykd began, holding `head_stats.json`, is resumed on it without measuring again."""
    from raykd.data import load_splits
    from raykd.experiments.run import run_reproduction
    from raykd.method.importance import StructureStats
    from raykd.method.round_cost import make_measure
    from raykd.task.io import SolverIO, load_solver
    from raykd.task.mwp import MWPTask

    teacher, tokenizer, _ = load_solver(tiny_teacher_dir)
    task = MWPTask(tokenizer, teacher.vocab, load_splits(DATA))
    base = ChainConfig.from_dict({**ChainConfig().to_dict(), "calib_batches": 1})

    def reproduce(out: Path) -> ReproductionResult:
        return run_reproduction(task, teacher, SolverIO(tokenizer), out, base, [], make_measure(task), data=DATA,
                                source="synthetic", log=lambda _m: None)

    fresh = tmp_path / "fresh"
    assert "teacher_stats_s" in reproduce(fresh).meta
    assert (fresh / "structure_stats.json").is_file() and not (fresh / "head_stats.json").exists()
    older = tmp_path / "older"
    older.mkdir()
    heads = StructureStats.load(fresh / "structure_stats.json").heads
    (older / "head_stats.json").write_text(heads.to_json())  # what an older raykd wrote: heads only
    assert "teacher_stats_s" not in reproduce(older).meta  # read back, not measured again
    assert sorted(p.name for p in older.iterdir()) == ["head_stats.json", "results.json"]
