from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from data_fixtures import ASDIV_ROWS, write_json

from raykd.cli import data as data_cli
from raykd.errors import DataError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raykd")
    data_cli.register(parser.add_subparsers(dest="command"))
    return parser


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return args.func(args)


def _bad_file(tmp_path: Path) -> Path:
    rows = [ASDIV_ROWS[0], {**ASDIV_ROWS[0], "@ID": "x", "Formula": "5+=12"}, {**ASDIV_ROWS[1], "Answer": "16 (boxes)"}]
    return write_json(tmp_path / "a.json", rows)


def test_check_human_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["data", "check", f"asdiv-a:{_bad_file(tmp_path)}"]) == 0
    out = capsys.readouterr().out
    assert "loaded: 2   skipped: 1   inconsistent: 1" in out
    assert "consistent: 50.00% of 2 problems with an equation" in out
    assert "  unusable equation: 1" in out
    assert "remainder problems: 1 floor (gold = the stated quotient" in out
    assert "  skipped      a.json row 1 (id x): unusable equation: '5+'" in out
    assert "  inconsistent a.json row 2 (id a-2): equation gives 15, gold is '16 (boxes)'" in out


def test_check_json_is_one_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["data", "check", f"asdiv-a:{_bad_file(tmp_path)}", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["loaded"], report["skipped"], report["consistent"]) == (2, 1, 0.5)
    assert report["skipped_reasons"] == {"unusable equation": 1}
    assert [(r["kind"], r["index"], r["id"]) for r in report["rows"]] == [
        ("skipped", 1, "x"),
        ("inconsistent", 2, "a-2"),
    ]
    assert report["by_complexity"] == {"simple": 2, "medium": 0, "complex": 0}


def test_check_strict_raises_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"row 1 \(id x\): unusable equation"):
        _run(["data", "check", f"asdiv-a:{_bad_file(tmp_path)}", "--strict"])


def test_show(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["data", "show", "synthetic:9:1", "--n", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("  text:") == 2 and "[synthetic-1-0] simple" in out and "[synthetic-1-1] medium" in out
    assert "  numbers:  N0=" in out and "2 of 9 problems from synthetic:9:1" in out


@pytest.mark.parametrize("argv", [["data", "--help"], ["data", "check", "--help"], ["data", "show", "--help"]])
def test_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(argv)
    assert exc.value.code == 0 and "usage: raykd data" in capsys.readouterr().out


def test_data_requires_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(["data"])
    assert exc.value.code == 2


@pytest.mark.parametrize(
    ("content", "message"), [(None, "data file not found"), ("{nope", "not JSON"), ("", "file is empty")]
)
def test_main_turns_data_errors_into_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    from raykd.cli import main

    path = tmp_path / "data.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert main(["data", "check", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("raykd: error: ")
    assert message in captured.err and str(path) in captured.err
