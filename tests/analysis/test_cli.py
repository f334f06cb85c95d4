"""`raykd pareto` and `raykd export`: output, exit codes, and the export round trip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sweep_factory import KNOWN_FRONT, KNOWN_HV, TRIALS, make_row, meta
from view_sweep import IDS, make_twelve

from raykd.cli import main
from raykd.results import write_sweep_meta, write_trial


TRIAL_IDS = set(TRIALS)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_pareto_table(capsys, demo_sweep):
    code, out, err = run_cli(capsys, "pareto", str(demo_sweep), "--max-drop", "0.5")
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines() if line[:1] == "t" and line.split()[0] in TRIAL_IDS}
    assert {tid for tid, line in rows.items() if "★" in line} == KNOWN_FRONT
    assert set(rows) >= {"t4", "t5", "t6", "t7"}
    assert "t7 failed: RuntimeError: CUDA out of memory" in out and "t6 pruned: stopped early: not final" in out
    assert rows["t0"].split() == ["t0", "★", "81.0", "-0.2", "1.05", "1.15M", "40H"]  # the readable default view
    assert "combined" not in out  # hyperparameters only with --params
    assert "hypervolume  0.3535 (reference: accuracy 0, speedup 1)" in out
    assert "teacher      valid accuracy 81.20%" in out
    assert "pick         trial t0" in out and "drop 0.20 pt" in out


def test_pareto_json_and_png(capsys, tmp_path, demo_sweep):
    png = tmp_path / "front.png"
    code, out, err = run_cli(capsys, "pareto", str(demo_sweep), "--json", "--max-drop", "1", "--png", str(png))
    assert code == 0, err
    obj = json.loads(out)
    assert {r["trial_id"] for r in obj["front"]} == KNOWN_FRONT
    assert len(obj["trials"]) == 8 and obj["hypervolume"] == pytest.approx(KNOWN_HV)
    assert obj["pick"]["trial_id"] == "t1" and obj["pick_error"] is None
    assert obj["reference_point"] == {"accuracy": 0.0, "speedup": 1.0}
    failed = next(r for r in obj["trials"] if r["trial_id"] == "t7")
    assert failed["accuracy"] is None and failed["on_front"] is False  # NaN -> null: valid JSON
    assert png.read_bytes()[:4] == b"\x89PNG" and obj["png"] == str(png)
    from raykd.outputs import is_raykd_png

    assert is_raykd_png(png)  # marked as raykd's, so a later --png may replace it without --force
    first = png.read_bytes()
    code, _, err = run_cli(capsys, "pareto", str(demo_sweep), "--max-drop", "2", "--png", str(png))
    assert code == 0, err
    assert png.read_bytes() != first and is_raykd_png(png)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["front.png"]  # written atomically, no temporary left


def test_pareto_other_objectives_and_an_impossible_pick(capsys, demo_sweep):
    code, out, _ = run_cli(capsys, "pareto", str(demo_sweep), "--objectives", "accuracy:max,params:min",
                           "--max-drop", "0.1", "--json")
    obj = json.loads(out)
    assert code == 0 and {r["trial_id"] for r in obj["front"]} == KNOWN_FRONT | {"t5"}
    assert obj["pick"] is None and "accuracy drop <= 0.1 pt" in obj["pick_error"]
    code, out, _ = run_cli(capsys, "pareto", str(demo_sweep), "--reference", "accuracy=0,speedup=1.2", "--json")
    assert json.loads(out)["hypervolume"] == pytest.approx(0.790 * 0.10 + 0.760 * 0.15)


@pytest.fixture(scope="module")
def twelve_sweep(tmp_path_factory) -> Path:
    """A 12-trial structured sweep with intervals, paired tests and re-timed speeds (tests/results/view_sweep.py)."""
    return make_twelve(tmp_path_factory.mktemp("twelve"))


def _fits(out: str, width: int) -> None:
    """No cell cut, and the table (everything above the summary lines, which the terminal wraps) within `width`."""
    from rich.cells import cell_len

    assert "…" not in out, out
    table = out.split("\nteacher      valid accuracy")[0]
    assert max(cell_len(line.rstrip()) for line in table.splitlines()) <= width, out


@pytest.mark.parametrize("columns", ["80", "100"])
def test_pareto_default_view_fits_the_terminal(capsys, monkeypatch, twelve_sweep, columns):
    """12 trials at COLUMNS=80 and 100: every cell whole, every column there (the old 26-column table cut
    every cell to "77.6…" and ran to 200 columns)."""
    monkeypatch.setenv("COLUMNS", columns)
    code, out, err = run_cli(capsys, "pareto", str(twelve_sweep))
    assert code == 0, err
    _fits(out, int(columns))
    for tid in IDS:
        assert tid in out
    for header in ("trial", "accuracy %", "[95% CI]", "Δ pt", "speed ×", "params", "shape"):
        assert header in out, header
    first = " ".join(line for line in out.splitlines() if line.startswith(IDS[0]))
    for cell in ("★", "77.6 [75.1–80.0]", "1.23 [1.18–1.27]", "21.1M", "6L·66H·8448F"):
        assert cell in first, cell
    assert "1.90 (table)" in out  # a trial that was not re-timed says where its speed came from
    assert "hypervolume" in out and "teacher      valid accuracy 78.64%" in out


@pytest.mark.parametrize("columns", ["80", "100"])
@pytest.mark.parametrize("flag, expect", [("--params", ("alpha", "p_max", "importance")),
                                          ("--wide", ("alpha", "ideal_speedup", "latency_ms", "retimed_sessions",
                                                      "accuracy_lost", "layers_original"))])
def test_pareto_params_and_wide(capsys, monkeypatch, twelve_sweep, columns, flag, expect):
    monkeypatch.setenv("COLUMNS", columns)
    code, out, err = run_cli(capsys, "pareto", str(twelve_sweep), flag)
    assert code == 0, err
    _fits(out, int(columns))
    words = set(out.split())
    for name in expect:
        assert name in words, name


def test_pareto_formats_for_scripts(capsys, twelve_sweep):
    import csv
    import io

    code, out, err = run_cli(capsys, "pareto", str(twelve_sweep), "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 12 and {r["trial_id"] for r in rows} == set(IDS)
    assert float(next(r for r in rows if r["trial_id"] == IDS[0])["accuracy"]) == pytest.approx(854 / 1100)
    code, out, err = run_cli(capsys, "pareto", str(twelve_sweep), "--format", "json", "--params")
    records = json.loads(out)
    assert code == 0 and len(records) == 12 and "hp_alpha" in records[0] and records[0]["on_front"] is True
    code, out, err = run_cli(capsys, "pareto", str(twelve_sweep), "--format", "markdown")
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert code == 0 and len(table) == 2 + 13 and len({line.count(" | ") for line in table if " | " in line}) == 1
    code, out, err = run_cli(capsys, "pareto", str(twelve_sweep), "--format", "csv", "--json")
    assert code == 2 and err.startswith("raykd: error: ") and err.count("\n") == 1 and out == ""


def test_pareto_margin_marks_non_inferior_trials(capsys, monkeypatch, twelve_sweep):
    from raykd.analysis import open_sweep

    sw = open_sweep(twelve_sweep)
    if not sw.df["accuracy_diff"].notna().any() if "accuracy_diff" in sw.df else True:
        pytest.skip("raykd.stats records no paired difference yet")
    monkeypatch.setenv("COLUMNS", "100")
    code, out, err = run_cli(capsys, "pareto", str(twelve_sweep), "--margin", "3")
    assert code == 0, err
    _fits(out, 100)
    marks = {line.split()[0]: next(w for w in line.split() if w in ("✓", "✗")) for line in out.splitlines()
             if line.startswith("3f9a1_") and ("✓" in line or "✗" in line)}
    expect = {r["trial_id"]: "✓" if 100 * r["accuracy_diff_low"] > -3 else "✗"
              for _, r in sw.df.iterrows() if r["status"] != "failed"}
    assert marks == expect and "✓" in expect.values() and "✗" in expect.values()


def test_sweep_final_printout_off_a_terminal(capsys, monkeypatch, twelve_sweep):
    """`raykd sweep` prints its front with print_table: with stdout a file and no COLUMNS, 100 columns, nothing cut."""
    from raykd.analysis import open_sweep
    from raykd.cli.pareto import print_table

    monkeypatch.delenv("COLUMNS", raising=False)
    sw = open_sweep(twelve_sweep)
    objs = sw.resolve_objectives(None)
    print_table(sw, objs, sw.pareto_mask(objs), front_only=True)
    out = capsys.readouterr().out
    _fits(out, 100)
    assert {line.split()[0] for line in out.splitlines() if line.startswith("3f9a1_")} == set(IDS[:7])
    assert "the 7 trials of its Pareto front" in out


def test_front_plot_draws_accuracy_intervals_and_the_margin_band(twelve_sweep):
    from matplotlib.collections import LineCollection

    from raykd.analysis import open_sweep

    sw = open_sweep(twelve_sweep)
    fig = sw.plot_front(margin=2.0)
    ax = fig.axes[0]
    bars = [c for c in ax.collections if isinstance(c, LineCollection) and c.get_gid() == "accuracy-ci"]
    assert len(bars) == 1
    segments = bars[0].get_segments()
    shown = sw.df[sw.df["status"].isin(["complete", "pruned"])]
    assert len(segments) == len(shown) == 11
    got = sorted((round(s[0][0], 6), round(min(s[0][1], s[1][1]), 6), round(max(s[0][1], s[1][1]), 6)) for s in segments)
    want = sorted((round(r["speedup"], 6), round(100 * r["accuracy_ci_low"], 6), round(100 * r["accuracy_ci_high"], 6))
                  for _, r in shown.iterrows())
    assert got == want  # vertical bars at each point's speed, from its interval's low to its high
    assert any(c.get_label().startswith("re-timed") for c in ax.containers)  # beside the re-timed speed bars
    band = [p for p in ax.patches if p.get_gid() == "non-inferiority-band"]
    assert len(band) == 1
    t = 100 * sw.teacher_accuracy
    (x0, y0), (x1, y1) = band[0].get_bbox().get_points()  # axhspan: a rectangle in (axes x, data y)
    assert (y0, y1) == (pytest.approx(t - 2.0), pytest.approx(t)) and (x0, x1) == (0, 1)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(text.startswith("95% accuracy interval") for text in legend)
    assert any("non-inferiority band: teacher − 2 pt" in text for text in legend)
    fig_plain = sw.plot_front()
    assert not [p for p in fig_plain.axes[0].patches if p.get_gid() == "non-inferiority-band"]


def _all_failed(root: Path) -> Path:
    write_sweep_meta(root, meta())
    write_trial(root, make_row("demo", "a", "failed", None, None, None))
    return root


@pytest.mark.parametrize("case, argv, message", [
    ("not-a-sweep", [], "is not a raykd sweep (no results/sweep.json)"),
    ("empty", [], "has no trial rows yet"),
    ("all-failed", [], "has no complete trial (1 failed; first error: RuntimeError: CUDA out of memory"),
    ("demo", ["--objectives", "accuracy:max,sped:max"], "unknown objective metric 'sped' (known: accuracy, "),
    ("demo", ["--objectives", "accuracy:up"], "mode must be max or min"),
    ("demo", ["--max-drop", "-1"], "argument --max-drop: must be in [0, inf]"),
    ("demo", ["--reference", "accuracy"], "bad --reference"),
    ("demo", ["--params", "--wide"], "argument --wide: not allowed with argument --params"),
    ("demo", ["--format", "xml"], "argument --format: invalid choice: 'xml'"),
    ("demo", ["--margin", "-1"], "argument --margin: must be in [0, 100)"),
    ("demo", ["--margin", "inf"], "argument --margin: "),
])
def test_pareto_bad_input_exits_2_with_one_line(capsys, tmp_path, demo_sweep, case, argv, message):
    root = tmp_path / case
    if case == "empty":
        write_sweep_meta(root, meta())
    elif case == "all-failed":
        _all_failed(root)
    elif case == "demo":
        root = demo_sweep
    else:
        root.mkdir()
    code, out, err = run_cli(capsys, "pareto", str(root), *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("raykd: error: ") and message in err, err
    assert out == ""


def test_export_round_trip(capsys, tmp_path, demo_sweep):
    from raykd.task.io import MODEL_KIND, load_solver

    out_dir = tmp_path / "exported"
    code, out, err = run_cli(capsys, "export", str(demo_sweep), "--trial", "t2", "--out", str(out_dir))
    assert code == 0, err
    assert "exported trial t2 of sweep demo" in out
    model, tokenizer, config = load_solver(out_dir)
    assert config["model_kind"] == MODEL_KIND and tokenizer is not None and model is not None
    assert not (out_dir / "state.json").exists()  # the chain's resume file stays behind
    readme = (out_dir / "README.md").read_text()
    for text in ("sweep `demo`, trial `t2`", "| alpha | 0.3 |", "| tau | 3 |", "| importance | combined |",
                 "| p_max | 0.35 |", "79.00%", "1.300x", "1,000,000", "selected by --trial t2", "## Provenance",
                 "checkpoint copied from", "| round | ratio |"):
        assert text in readme, text
    record = json.loads((out_dir / "export.json").read_text())
    assert record["trial_id"] == "t2" and record["hyperparameters"]["alpha"] == 0.3
    assert record["metrics"]["speedup"] == pytest.approx(1.3) and len(record["rounds"]) == 2
    # the copy is independent of the sweep
    assert not any(p.is_symlink() for p in out_dir.iterdir())


@pytest.mark.parametrize("pick, trial", [("max-drop=0.5", "t0"), ("min-speedup=1.2", "t5"),
                                         ("min-speedup=1.2,max-drop=3", "t2"), ("max-drop=6,by=params:min", "t3")])
def test_export_pick(capsys, tmp_path, demo_sweep, pick, trial):
    out_dir = tmp_path / "m"
    code, out, err = run_cli(capsys, "export", str(demo_sweep), "--pick", pick, "--out", str(out_dir), "--json")
    assert code == 0, err
    obj = json.loads(out)
    assert obj["trial_id"] == trial and obj["selected_by"] == f'--pick "{pick}"'
    assert (out_dir / "model.safetensors").is_file() and f"trial `{trial}`" in (out_dir / "README.md").read_text()


def test_export_refuses_to_overwrite_without_force(capsys, tmp_path, demo_sweep):
    out_dir = tmp_path / "m"
    out_dir.mkdir()
    (out_dir / "keep.txt").write_text("mine")
    for force in ([], ["--force"]):  # files raykd did not write are never replaced, not even with --force
        code, _, err = run_cli(capsys, "export", str(demo_sweep), "--trial", "t1", "--out", str(out_dir), *force)
        assert code == 2 and "holds files raykd did not write (keep.txt)" in err
        assert sorted(p.name for p in out_dir.iterdir()) == ["keep.txt"] and (out_dir / "keep.txt").read_text() == "mine"
    model_dir = tmp_path / "model"
    assert run_cli(capsys, "export", str(demo_sweep), "--trial", "t1", "--out", str(model_dir))[0] == 0
    first = (model_dir / "export.json").read_text()
    code, _, err = run_cli(capsys, "export", str(demo_sweep), "--trial", "t1", "--out", str(model_dir))
    assert code == 2 and "already holds a raykd model; use --force" in err
    assert (model_dir / "export.json").read_text() == first
    code, _, err = run_cli(capsys, "export", str(demo_sweep), "--trial", "t2", "--out", str(model_dir), "--force")
    assert code == 0, err  # an earlier raykd export is replaced on request
    assert '"trial_id": "t2"' in (model_dir / "export.json").read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


@pytest.mark.parametrize("argv, message", [
    (["--trial", "t7"], "trial t7 (failed) has no checkpoint_path: nothing to export"),
    (["--trial", "zz"], "no trial 'zz' in sweep demo"),
    (["--pick", "max-drop=0.1"], "no complete trial in sweep demo has accuracy drop <= 0.1 pt"),
    (["--pick", "fastest"], "bad --pick 'fastest'"),
    (["--pick", "max-drop=half"], "max-drop needs a number"),
])
def test_export_bad_input_exits_2(capsys, tmp_path, demo_sweep, argv, message):
    code, out, err = run_cli(capsys, "export", str(demo_sweep), *argv, "--out", str(tmp_path / "m"))
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert out == ""
    assert not (tmp_path / "m").exists()


def test_export_of_a_checkpoint_that_is_not_a_solver(capsys, tmp_path, demo_sweep):
    sweep = tmp_path / "copy"
    shutil.copytree(demo_sweep, sweep)
    ck = sweep / "train" / "t1" / "checkpoint_000002"
    (ck / "model.safetensors").unlink()
    # the row still points at the original sweep: rewrite it to point at the damaged copy
    write_trial(sweep, make_row("demo", "t1", "complete", 0.805, 1.15, 1_100_000, checkpoint_path=str(ck)))
    code, _, err = run_cli(capsys, "export", str(sweep), "--trial", "t1", "--out", str(tmp_path / "m"))
    assert code == 2 and "has no model.safetensors" in err
    assert not (tmp_path / "m").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".m.")]
    # weights that are there but damaged are caught too: export verifies what it copies
    ck0 = sweep / "train" / "t0" / "checkpoint_000002"
    weights = ck0 / "model.safetensors"
    for damage, message in ((lambda b: b[: len(b) // 2], "not a readable safetensors file"),
                            (lambda b: b[:-1] + bytes([b[-1] ^ 0xFF]), "does not match the checksum")):
        original = weights.read_bytes()
        weights.write_bytes(damage(original))
        write_trial(sweep, make_row("demo", "t1", "complete", 0.805, 1.15, 1_100_000, checkpoint_path=str(ck0)))
        code, _, err = run_cli(capsys, "export", str(sweep), "--trial", "t1", "--out", str(tmp_path / "m"))
        assert code == 2 and message in err and str(ck0) in err, err
        assert not (tmp_path / "m").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".m.")]
        weights.write_bytes(original)
    # a relative checkpoint path is resolved against the sweep directory
    write_trial(sweep, make_row("demo", "t1", "complete", 0.805, 1.15, 1_100_000,
                                checkpoint_path="train/t0/checkpoint_000002"))
    code, _, err = run_cli(capsys, "export", str(sweep), "--trial", "t1", "--out", str(tmp_path / "m"))
    assert code == 0, err
