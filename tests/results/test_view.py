"""The readable view of a sweep's trials (raykd.results.view.render_front): nothing cut, nothing
dropped silently, machine formats that parse back, on a 12-trial sweep with real statistics."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from rich.cells import cell_len
from view_sweep import IDS, make_twelve, teacher

from raykd.results import pareto_mask, read_trials
from raykd.results.view import render_front, terminal_width

HYPERPARAMETERS = ("alpha", "n", "tau", "p_max", "importance")


@pytest.fixture(scope="module")
def twelve(tmp_path_factory) -> pd.DataFrame:
    df = read_trials(make_twelve(tmp_path_factory.mktemp("view"))).to_pandas()
    return df.assign(on_front=pareto_mask(df, "accuracy:max,speedup:max"))


def _check_fits(text: str, width: int) -> None:
    assert "…" not in text and "..." not in text, text
    too_wide = [line for line in text.splitlines() if cell_len(line.rstrip()) > width]
    assert not too_wide, "\n".join(too_wide)


def _cell_values(df: pd.DataFrame) -> list[str]:
    """What every complete trial's default cells must show whole."""
    out = []
    for _, r in df[df["status"] == "complete"].iterrows():
        out.append(f"{100 * r['accuracy']:.1f} [{100 * r['accuracy_ci_low']:.1f}–{100 * r['accuracy_ci_high']:.1f}]")
        if "accuracy_diff" in df and pd.notna(r.get("accuracy_diff")):
            out.append(f"{100 * r['accuracy_diff']:+.1f} [{100 * r['accuracy_diff_low']:.1f}, {100 * r['accuracy_diff_high']:.1f}]")
        else:
            out.append(f"(p {r['accuracy_p_vs_teacher']:.2g})")
        if pd.notna(r["retimed_speedup"]):
            out.append(f"{r['retimed_speedup']:.2f} [{r['retimed_low']:.2f}–{r['retimed_high']:.2f}]")
        else:
            out.append(f"{r['speedup']:.2f} (table)")
        out.append(f"{int(r['layers_total'])}L·{int(r['heads_total'])}H·{int(r['ffn_channels_total'])}F")
    return out


@pytest.mark.parametrize("width", [80, 100])
def test_default_view_fits_and_cuts_nothing(twelve, width):
    text = render_front(twelve, teacher=teacher(), width=width)
    _check_fits(text, width)
    for tid in IDS:  # every trial, its id whole
        assert tid in text
    for value in _cell_values(twelve):  # every cell whole, on one line
        assert value in text, value
    for header in ("trial", "accuracy %", "[95% CI]", "Δ pt", "speed ×", "params", "shape"):
        assert header in text, header  # no column dropped
    lines = text.splitlines()
    teacher_lines = " ".join(line for line in lines if line.startswith("teacher"))  # one per table
    assert "78.6 [76.1–81.0]" in teacher_lines and "22.7M" in teacher_lines and "6L·72H·9216F" in teacher_lines
    assert {line.split()[0] for line in lines if line.startswith("3f9a1_") and "★" in line} == set(IDS[:7])  # the front
    assert "3f9a1_00011 failed: RuntimeError: the worker died" in text  # the error, whole, under the table
    assert "3f9a1_00010 pruned" in text


def test_default_view_is_one_table_at_100_columns(twelve):
    text = render_front(twelve, teacher=teacher(), width=100)
    assert sum(line.startswith("trial") or line.lstrip().startswith("trial ") for line in text.splitlines()) == 1
    row = next(line for line in text.splitlines() if line.startswith("3f9a1_00000"))
    assert "21.1M" in row and "6L·66H·8448F" in row and "1.23 [1.18–1.27]" in row


@pytest.mark.parametrize("width", [80, 100])
@pytest.mark.parametrize("view", ["params", "wide"])
def test_params_and_wide_views_fit_and_show_their_columns(twelve, width, view):
    text = render_front(twelve, teacher=teacher(), width=width, columns=view)
    _check_fits(text, width)
    for hp in HYPERPARAMETERS:
        assert any(hp in line.split() for line in text.splitlines()), hp
    if view == "wide":  # every stored column is a header or named in a note under the tables
        for col in twelve.columns:
            if not col.startswith("hp_") and col not in ("trial_id", "status", "on_front"):
                assert col in text, col
        assert "not in the table: chain_config_json, rounds_json, accuracy_correct" in text.replace("\n", " ")


def test_default_view_has_no_hyperparameters(twelve):
    text = render_front(twelve, teacher=teacher(), width=100)
    assert not any(hp in line.split() for line in text.splitlines() for hp in ("alpha", "tau", "p_max"))


@pytest.mark.parametrize("width", [20, 30, 45])
def test_narrow_widths_wrap_or_stack_never_cut(twelve, width):
    text = render_front(twelve, teacher=teacher(), width=width, columns="params")
    _check_fits(text, width)
    flat = " ".join(text.split())
    for tid in IDS:
        assert tid in flat
    for hp in HYPERPARAMETERS:
        assert hp in flat


def test_csv_round_trip(twelve):
    out = render_front(twelve, teacher=teacher(), fmt="csv", columns="params")
    back = pd.read_csv(io.StringIO(out))
    assert list(back["trial_id"]) == [*IDS[:7], *IDS[7:]] or sorted(back["trial_id"]) == IDS
    assert len(back) == 12
    for col in ("accuracy", "accuracy_ci_low", "accuracy_ci_high", "retimed_speedup", "params", "shape",
                *(f"hp_{h}" for h in HYPERPARAMETERS)):
        assert col in back.columns, col
    merged = back.merge(twelve, on="trial_id", suffixes=("", "_stored"))
    for col in ("accuracy", "accuracy_ci_low", "speedup", "retimed_speedup", "params", "hp_alpha"):
        a, b = merged[col], merged[f"{col}_stored"]
        assert ((a - b).abs() < 1e-12).sum() == b.notna().sum(), col  # raw values, not rounded cells
    assert back.loc[back["trial_id"] == IDS[0], "params"].item() == 21_100_000  # an integer, not 2.11e7


def test_json_round_trip(twelve):
    records = json.loads(render_front(twelve, teacher=teacher(), fmt="json"))
    assert len(records) == 12 and {r["trial_id"] for r in records} == set(IDS)
    first = next(r for r in records if r["trial_id"] == IDS[0])
    stored = twelve[twelve["trial_id"] == IDS[0]].iloc[0]
    assert first["accuracy"] == pytest.approx(stored["accuracy"]) and first["on_front"] is True
    assert first["shape"] == "6L·66H·8448F" and first["params"] == 21_100_000
    failed = next(r for r in records if r["trial_id"] == IDS[11])
    assert failed["accuracy"] is None and failed["status"] == "failed"  # NaN -> null: valid JSON
    assert not any(k.startswith("hp_") for k in first)
    wide = json.loads(render_front(twelve, teacher=teacher(), fmt="json", columns="wide"))
    assert set(twelve.columns) - {"_key"} <= set(wide[0])  # everything, the long strings included


def test_markdown_round_trip(twelve):
    text = render_front(twelve, teacher=teacher(), fmt="markdown", columns="params")
    tables: list[list[list[str]]] = [[]]
    for line in text.splitlines():
        if line.startswith("|"):
            if not line.startswith("|:---"):  # the rule under the header
                tables[-1].append([c.strip() for c in line.strip().strip("|").split(" | ")])
        elif tables[-1]:
            tables.append([])
    tables = [t for t in tables if t]
    assert len(tables) == 2  # the view, then the hyperparameters
    main, hps = tables
    assert all(len(row) == len(main[0]) == 6 for row in main) and len(main) == 1 + 13  # header, teacher + 12
    assert all(len(row) == len(hps[0]) for row in hps) and len(hps) == 1 + 12
    assert main[1][0] == "teacher" and main[2][0] == f"{IDS[0]} ★" and main[2][1] == "77.6 [75.1–80.0]"
    assert hps[0] == ["trial", *sorted(HYPERPARAMETERS)]


def test_difference_columns_and_margin(twelve):
    df = twelve.copy()
    if "accuracy_diff" not in df or df["accuracy_diff"].isna().all():
        pytest.skip("raykd.stats records no paired difference yet")
    text = render_front(df, teacher=teacher(), width=100, margin=2.0)
    ok = df[(df["status"] == "complete")]
    for _, r in ok.iterrows():
        line = next(line for line in text.splitlines() if line.startswith(r["trial_id"]))
        mark = "✓" if 100 * r["accuracy_diff_low"] > -2.0 else "✗"
        assert f"{100 * r['accuracy_diff_high']:.1f}] {mark}" in line
    assert "✓ non-inferior at a 2-point margin" in " ".join(text.split())


def test_difference_falls_back_to_drop_and_mcnemar_p(twelve):
    df = twelve.drop(columns=[c for c in twelve.columns if c.startswith("accuracy_diff")] + ["accuracy_correct"])
    text = render_front(df, teacher=teacher(), width=100)
    row = df[df["trial_id"] == IDS[0]].iloc[0]
    drop = (teacher()["accuracy"] - row["accuracy"]) * 100
    assert f"{-drop:+.1f} (p {row['accuracy_p_vs_teacher']:.2g})" in text
    assert "exact McNemar" in " ".join(text.split())


def test_difference_from_the_stored_bits(twelve):
    """A sweep whose rows hold per-problem bits but no difference columns gets them computed."""
    from raykd import stats

    if not hasattr(stats, "paired_difference"):
        pytest.skip("raykd.stats has no paired_difference yet")
    df = twelve.drop(columns=[c for c in twelve.columns if c.startswith("accuracy_diff")])
    text = render_front(df, teacher=teacher(), width=100)
    t = teacher()["metrics"]["valid"]
    r = df[df["trial_id"] == IDS[2]].iloc[0]
    d = stats.paired_difference(stats.unpack_correct(t["correct_bits"], t["n"]),
                                stats.unpack_correct(r["accuracy_correct"], int(r["accuracy_n"])))
    assert f"{100 * d.difference:+.1f} [{100 * d.low:.1f}, {100 * d.high:.1f}]" in text


def test_speed_without_retiming_names_its_source(twelve):
    df = twelve.drop(columns=["retimed_speedup", "retimed_low", "retimed_high"])
    text = render_front(df, teacher=teacher(), width=100)
    assert "speed: latency table" in " ".join(text.split())
    assert "1.19" in next(line for line in text.splitlines() if line.startswith(IDS[0]))


def test_width_from_the_environment(monkeypatch, twelve, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    assert terminal_width() == 80
    _check_fits(render_front(twelve, teacher=teacher()), 80)
    monkeypatch.delenv("COLUMNS")
    assert terminal_width() == 100  # stdout captured: not a terminal
    _check_fits(render_front(twelve, teacher=teacher()), 100)


def test_bad_arguments(twelve):
    with pytest.raises(ValueError, match="columns must be one of"):
        render_front(twelve, columns="narrow")
    with pytest.raises(ValueError, match="fmt must be one of"):
        render_front(twelve, fmt="html")


def test_a_store_frame_without_teacher_or_statistics():
    """The oldest rows (no intervals, no re-timing, heads only) still render, nothing cut."""
    from sweep_factory import TRIALS, make_row

    df = pd.DataFrame([make_row("demo", tid, *spec[:4]) for tid, spec in TRIALS.items()])
    text = render_front(df, width=60)
    _check_fits(text, 60)
    assert "81.0" in text and "36H" in text and "t7 failed: RuntimeError: CUDA out of memory" in text
