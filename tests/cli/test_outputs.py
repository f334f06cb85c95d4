"""Output safety: one place checks every command's outputs, writes are atomic, runs resume only
when their inputs match, and the parser itself refuses unchecked flags."""

from __future__ import annotations

import argparse
import json
import shutil

import pytest

from raykd.cli import build_parser, main
from raykd.cli.args import plain_numeric_flags
from raykd.outputs import OutputError, atomic_dir, is_model_dir
from raykd.task.io import load_solver, save_solver

CHAIN_SETTINGS = ["--set", "rounds=1", "--set", "p_min=0.2", "--set", "p_max=0.2", "--set", "epochs_per_round=1",
                  "--set", "steps_per_round=2", "--set", "calib_batches=1", "--set", "latency_batch=2",
                  "--set", "latency_repeats=1"]


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    out = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = _commands(sub)
                out.update(nested or {name: sub})
    return out


def test_no_flag_of_any_command_takes_an_unchecked_number():
    assert plain_numeric_flags(build_parser()) == []


def test_every_output_flag_is_checked_by_the_one_output_guard():
    for name, sub in _commands(build_parser()).items():
        registered = {spec.dest for spec in (sub.get_default("_outputs") or [])}
        for action in sub._actions:
            if action.dest in ("out", "png"):
                assert action.dest in registered, f"{name} {action.option_strings} bypasses add_output"


def test_help_names_the_defaults_that_protect_files(capsys):
    assert main(["--help"]) == 0
    top = " ".join(capsys.readouterr().out.split())
    assert "--force" in top and "no command replaces a file or directory it did not write" in top
    for command in ("teacher", "prune", "export", "pareto"):
        assert main([command, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "--force" in text
        assert ("never a directory holding other files" in text) or ("only if raykd wrote it" in text)
    for command in ("chain", "reproduce"):
        assert main([command, "--help"]) == 0
        assert "resumed only if" in " ".join(capsys.readouterr().out.split())


def test_teacher_out_keeps_user_files_and_replaces_its_own_model_only_on_force(tmp_path, capsys):
    argv = ["teacher", "--data", "synthetic:60", "--epochs", "1", "--max-steps", "1", "--quiet"]
    target = tmp_path / "x"
    (target / "sub").mkdir(parents=True)
    (target / "keep.txt").write_text("keep")
    assert main([*argv, "--out", str(target)]) == 2  # the reproduction: keep.txt must survive
    assert (target / "keep.txt").read_text() == "keep"
    model_dir = tmp_path / "model"
    assert main([*argv, "--out", str(model_dir)]) == 0
    first = (model_dir / "config.json").read_text()
    assert main([*argv, "--seed", "1", "--out", str(model_dir)]) == 2
    assert "already holds a raykd model; use --force" in capsys.readouterr().err
    assert (model_dir / "config.json").read_text() == first
    assert main([*argv, "--seed", "1", "--out", str(model_dir), "--force"]) == 0
    assert (model_dir / "config.json").read_text() != first
    load_solver(model_dir)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "x"]  # no temporaries left


class _TokenizerThatFails:
    """A real failure in the middle of a save (after the weights are written)."""

    def save_pretrained(self, _directory: str) -> None:
        raise OSError("disk full")


def test_a_save_that_fails_midway_leaves_the_old_model_intact(tiny_teacher_dir, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(tiny_teacher_dir, target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    model, _, _ = load_solver(target)
    with pytest.raises(OSError, match="disk full"):
        save_solver(model, _TokenizerThatFails(), target, replace=True)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    load_solver(target)


def test_save_solver_replaces_only_what_raykd_wrote(tiny_teacher_dir, tmp_path):
    model, tokenizer, _ = load_solver(tiny_teacher_dir)
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    for replace in (False, True):
        with pytest.raises(OutputError, match="may not replace"):
            save_solver(model, tokenizer, user, replace=replace)
    assert [p.name for p in user.iterdir()] == ["notes.txt"]
    own = save_solver(model, tokenizer, tmp_path / "own")
    with pytest.raises(OutputError):
        save_solver(model, tokenizer, own)  # replace defaults to False
    save_solver(model, tokenizer, own, extra={"again": True}, replace=True)
    assert json.loads((own / "config.json").read_text())["again"] is True and is_model_dir(own)


def test_atomic_dir_cleans_up_and_keeps_the_target_when_the_body_fails(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "a").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(target, may_replace=lambda _p: True) as tmp:
            (tmp / "a").write_text("new")
            raise RuntimeError("crash")
    assert (target / "a").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with atomic_dir(target, may_replace=lambda _p: True) as tmp:
        (tmp / "a").write_text("new")
    assert (target / "a").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_chain_cli_resumes_the_same_run_and_refuses_a_changed_one(tiny_teacher_dir, tmp_path, capsys):
    out = tmp_path / "chain"
    base = ["chain", "--teacher", str(tiny_teacher_dir), "--data", "synthetic:400:7", "--out", str(out), "--json", *CHAIN_SETTINGS]
    assert main(base) == 0
    first = json.loads(capsys.readouterr().out)
    state = (out / "round-01" / "state.json").read_bytes()
    assert main(base) == 0  # the same settings: the finished chain is returned as it is
    assert json.loads(capsys.readouterr().out)["rounds"] == first["rounds"]
    # the reproduction: other settings must not return the old chain's result
    assert main([*base, "--set", "p_max=0.5", "--set", "alpha=0"]) == 2
    err = capsys.readouterr().err
    assert "config.alpha: 0.5 -> 0" in err and "config.p_max: 0.2 -> 0.5" in err and len(err.strip().splitlines()) == 1
    assert main([*base, "--seed", "3"]) == 2  # another split of the data
    assert "data: " in capsys.readouterr().err
    other_teacher = tmp_path / "pruned"
    assert main(["prune", "--model", str(tiny_teacher_dir), "--ratio", "0.25", "--calib", "synthetic:40",
                 "--out", str(other_teacher)]) == 0
    capsys.readouterr()
    assert main([*base[:2], str(other_teacher), *base[3:]]) == 2
    assert "teacher: " in capsys.readouterr().err
    assert (out / "round-01" / "state.json").read_bytes() == state
    assert sorted(p.name for p in out.iterdir()) == ["round-01"]


def test_a_problem_with_a_number_no_float_can_hold_is_skipped_with_its_reason(tmp_path, capsys):
    rows = [{"Body": "Tom has " + "9" * 400 + " apples.", "Question": "He eats 2. How many are left?",
             "Formula": "N0-N1", "Answer": "1"},
            {"Body": "Tom has 5 apples.", "Question": "He eats 2. How many are left?", "Formula": "5-2=3", "Answer": "3"}]
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows))
    assert main(["data", "check", f"asdiv-a:{path}", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["loaded"] == 1 and report["skipped"] == 1
    assert any("number too large" in reason for reason in report["skipped_reasons"])
