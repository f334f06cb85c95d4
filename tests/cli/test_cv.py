"""`raykd cv` end to end on tiny synthetic data: folds -> teacher + chain per fold -> one pooled
paired table; resumable per fold (a finished fold is never retrained) and refusing other settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raykd.cli import main
from raykd.stats import paired_difference, unpack_correct

TINY = ["--data", "synthetic:40", "--folds", "2", "--valid-fraction", "0.25", "--epochs", "1", "--threads", "1", "--quiet",
        "--set", "rounds=1", "--set", "epochs_per_round=1", "--set", "calib_batches=1", "--set", "latency_repeats=1",
        "--set", "latency_batch=2"]


def _mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory):
    """Fold 1 alone (as if interrupted), then the whole run: (out, mtimes of fold 1 after the first run, console)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("cv") / "run"
    assert main(["cv", *TINY, "--out", str(out), "--fold-limit", "1"]) == 0
    first = _mtimes(out / "fold-01")
    console = io.StringIO()
    with contextlib.redirect_stdout(console):
        assert main(["cv", *[a for a in TINY if a != "--quiet"], "--out", str(out)]) == 0
    return out, first, console.getvalue()


def test_an_interrupted_run_continues_without_retraining_finished_folds(cv_run):
    out, first, console = cv_run
    assert {"teacher/model.safetensors", "chain/round-01/state.json", "fold.json"} <= set(first)
    assert {k: v for k, v in _mtimes(out / "fold-01").items()} == first  # fold 1 untouched by the second run
    assert "fold 1: done earlier" in console and "fold 2: training the teacher" in console
    assert (out / "fold-02" / "fold.json").is_file() and (out / "pooled.json").is_file()
    # each chain round carries the paired difference from its teacher (valid and held-out fold)
    rec = json.loads((out / "fold-01" / "chain" / "round-01" / "state.json").read_text())["records"][0]
    assert rec["accuracy_diff_low"] <= rec["accuracy_diff"] <= rec["accuracy_diff_high"]
    assert rec["test_accuracy_diff_low"] <= rec["test_accuracy_diff"] <= rec["test_accuracy_diff_high"]


def test_the_pooled_table_pairs_every_problem_once(cv_run):
    out, _, console = cv_run
    pooled = json.loads((out / "pooled.json").read_text())
    folds = [json.loads((out / f"fold-0{i}" / "fold.json").read_text()) for i in (1, 2)]
    ids = [i for f in folds for i in f["problem_ids"]]
    assert len(ids) == len(set(ids)) == pooled["n"] == 40  # every problem of synthetic:40, evaluated once
    teacher = [b for f in folds for b in unpack_correct(f["teacher_correct"], f["n"])]
    student = [b for f in folds for b in unpack_correct(f["rounds"][0]["test_accuracy_correct"], f["n"])]
    t_row, s_row = pooled["rows"]
    assert t_row["model"] == "teacher" and t_row["accuracy"] == sum(teacher) / 40 and t_row["accuracy_n"] == 40
    expected = paired_difference(teacher, student)
    assert s_row["model"] == "round 1" and s_row["accuracy"] == sum(student) / 40
    assert (s_row["accuracy_diff"], s_row["accuracy_diff_low"], s_row["accuracy_diff_high"]) == \
        (expected.difference, expected.low, expected.high)
    assert s_row["accuracy_p_vs_teacher"] == expected.p_value
    assert s_row["non_inferior"] == expected.non_inferior(0.02) and pooled["margin_points"] == 2.0
    assert s_row["speedup_min"] <= s_row["speedup"] <= s_row["speedup_max"]
    assert len(pooled["teacher_fold_accuracy"]) == 2
    assert "pooled over 2 held-out folds, 40 problems" in console and "not worse by 2 pt" in console


def test_a_fold_without_its_record_reuses_its_teacher_and_chain(cv_run, tmp_path):
    import shutil

    out, _, _ = cv_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    before = _mtimes(copy / "fold-02")
    record = json.loads((copy / "fold-02" / "fold.json").read_text())
    (copy / "fold-02" / "fold.json").unlink()  # killed after the chain, before the fold's record
    assert main(["cv", *TINY, "--out", str(copy)]) == 0
    after = _mtimes(copy / "fold-02")
    assert after["teacher/model.safetensors"] == before["teacher/model.safetensors"]  # not retrained
    assert after["chain/round-01/state.json"] == before["chain/round-01/state.json"]  # the chain's own resume
    assert json.loads((copy / "fold-02" / "fold.json").read_text())["teacher_correct"] == record["teacher_correct"]


def test_other_settings_on_the_same_directory_are_refused(cv_run, capsys):
    out, _, _ = cv_run
    before = _mtimes(out)
    assert main(["cv", *TINY, "--out", str(out), "--seed", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("raykd: error:") and "seed" in err[0]
    assert _mtimes(out) == before


@pytest.mark.parametrize("extra, match", [
    (["--pool", "train,bogus"], "--pool"),
    (["--folds", "1"], "--folds"),
    (["--set", "test_every_round=false"], "test_every_round"),
    (["--data", "synthetic:3"], "cannot make 2 folds"),
    (["--valid-fraction", "0.01"], "keeps no valid problems"),
])
def test_bad_settings_are_one_line_exit_2(tmp_path, capsys, extra, match):
    out = tmp_path / "cv"
    assert main(["cv", *TINY, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("raykd: error:") and match in err[0]
    assert not out.exists()


def test_a_directory_holding_other_files_is_refused(tmp_path, capsys):
    out = tmp_path / "cv"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["cv", *TINY, "--out", str(out)]) == 2
    assert "notes.txt" in capsys.readouterr().err and sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_the_same_data_spelled_another_way_resumes(tmp_path, monkeypatch, capsys):
    """The data is compared by content: a relative path to the same files resumes a run made with
    the absolute one (a shell and a job start in different directories); other files are refused."""
    from asdiv_rows import asdiv_rows, write_asdiv_dir

    data = write_asdiv_dir(tmp_path / "data", train=30, valid=10)
    args = [a for a in TINY if a not in ("--data", "synthetic:40")]
    out = tmp_path / "run"
    assert main(["cv", *args, "--data", str(data), "--out", str(out), "--fold-limit", "1"]) == 0
    before = _mtimes(out)
    monkeypatch.chdir(tmp_path)
    assert main(["cv", *args, "--data", "data", "--out", str(out), "--fold-limit", "1"]) == 0  # nothing left to do
    assert _mtimes(out) == before
    (data / "valid.json").write_text(json.dumps(asdiv_rows(10, start=300)))
    capsys.readouterr()
    assert main(["cv", *args, "--data", "data", "--out", str(out)]) == 2
    assert "problems" in capsys.readouterr().err
