"""The Parquet results store: round trip, overwrite on rewrite, atomic writes, the pareto file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sweep_factory import KNOWN_FRONT, TRIALS, make_row, make_sweep, meta

from raykd.errors import RaykdInputError
from raykd.results import (
    TRIAL_COLUMNS,
    NotASweepError,
    read_pareto,
    read_sweep_meta,
    read_trials,
    store,
    trial_uri,
    update_pareto,
    write_sweep_meta,
    write_trial,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sweep(tmp_path) -> Path:
    root = tmp_path / "demo"
    write_sweep_meta(root, meta())
    return root


def row(tid="t1", status="complete", acc=0.8, sp=1.2, params=1_000_000, **kw):
    r = make_row("demo", tid, status, acc, sp, params)
    r.update(kw)
    return r


def test_round_trip_keeps_types_and_columns(sweep):
    write_trial(sweep, row("t1"))
    write_trial(sweep, row("t2", status="failed", acc=None, sp=None, params=None))
    table = read_trials(sweep)
    assert table.num_rows == 2
    assert set(TRIAL_COLUMNS) <= set(table.column_names)
    assert {"hp_alpha", "hp_n", "hp_tau", "hp_p_max", "hp_importance"} <= set(table.column_names)
    types = {f.name: str(f.type) for f in table.schema}
    assert types["accuracy"] == "double" and types["params"] == "int64" and types["hp_importance"] == "string"
    df = table.to_pandas().set_index("trial_id")
    assert df.loc["t1", "accuracy"] == 0.8 and df.loc["t1", "params"] == 1_000_000
    assert np.isnan(df.loc["t2", "accuracy"]) and df.loc["t2", "error"].startswith("RuntimeError")
    rounds = json.loads(df.loc["t1", "rounds_json"])  # a list of per-round dicts was JSON-encoded
    assert [r["round"] for r in rounds] == [1, 2] and rounds[-1]["accuracy"] == pytest.approx(0.8)
    assert json.loads(df.loc["t1", "chain_config_json"])["p_min"] == 0.05
    assert table.schema.metadata[b"raykd_results_version"] == b"1"


def test_rewriting_a_trial_replaces_its_row(sweep):
    write_trial(sweep, row("t1", acc=0.5))
    write_trial(sweep, row("t2", acc=0.6))
    write_trial(sweep, row("t1", acc=0.7, finished_at="2026-11-22T11:00:00+00:00"))
    df = read_trials(sweep).to_pandas()
    assert sorted(df["trial_id"]) == ["t1", "t2"]
    assert df.set_index("trial_id").loc["t1", "accuracy"] == 0.7
    assert sorted(os.listdir(sweep / "results" / "trials")) == ["t1.parquet", "t2.parquet"]


def test_failed_rename_leaves_the_previous_file_and_no_temporary(sweep, monkeypatch):
    write_trial(sweep, row("t1", acc=0.5))
    before = Path(trial_uri(sweep, "t1")).read_bytes()

    def boom(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(store.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_trial(sweep, row("t1", acc=0.9))
    monkeypatch.undo()
    assert Path(trial_uri(sweep, "t1")).read_bytes() == before
    assert os.listdir(sweep / "results" / "trials") == ["t1.parquet"]
    assert read_trials(sweep).to_pandas()["accuracy"].tolist() == [0.5]


def test_a_process_killed_mid_write_leaves_no_torn_file(sweep):
    """The writer dies after writing the new bytes but before the rename: readers still see the
    old row, and the orphaned temporary file is ignored."""
    write_trial(sweep, row("t1", acc=0.5))
    code = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from raykd.results import store
        from sweep_factory import make_row
        store.os.replace = lambda src, dst: os._exit(3)   # the crash
        r = make_row("demo", "t1", "complete", 0.9, 1.5, 900000)
        store.write_trial({str(sweep)!r}, r)
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 3, proc.stderr
    names = os.listdir(sweep / "results" / "trials")
    assert len([n for n in names if n.endswith(".tmp")]) == 1  # the crash really happened mid-write
    pq.read_table(trial_uri(sweep, "t1"))  # the visible file is whole
    assert read_trials(sweep).to_pandas()["accuracy"].tolist() == [0.5]


def test_bad_rows_raise_before_touching_the_file(sweep):
    write_trial(sweep, row("t1", acc=0.5))
    before = Path(trial_uri(sweep, "t1")).read_bytes()
    for bad, err in ((row("t1", status="done"), ValueError), (row("t1", params=1.5), ValueError),
                     (row("t1", extra={"a": 1}), TypeError), (row("t1", sweep=""), ValueError),
                     (row("../x"), ValueError), (row(".hidden"), ValueError)):
        with pytest.raises(err):
            write_trial(sweep, bad)
    assert Path(trial_uri(sweep, "t1")).read_bytes() == before
    assert os.listdir(sweep / "results" / "trials") == ["t1.parquet"]


def test_numpy_scalars_and_nan_are_accepted(sweep):
    write_trial(sweep, row("t1", acc=np.float32(0.75), params=np.int64(5), hp_alpha=np.float64(0.25),
                           test_accuracy=float("nan"), resumed=np.bool_(True)))
    df = read_trials(sweep).to_pandas()
    assert df.loc[0, "accuracy"] == pytest.approx(0.75) and df.loc[0, "params"] == 5
    assert df.loc[0, "hp_alpha"] == 0.25 and np.isnan(df.loc[0, "test_accuracy"]) and bool(df.loc[0, "resumed"])


def test_types_are_unified_across_trial_files(sweep):
    write_trial(sweep, row("t1", hp_rounds=2, hp_note=None))
    write_trial(sweep, row("t2", hp_rounds=2.5, hp_note="x"))
    table = read_trials(sweep)
    assert str(table.schema.field("hp_rounds").type) == "double"
    assert str(table.schema.field("hp_note").type) == "string"
    assert table.to_pandas().set_index("trial_id")["hp_rounds"].to_dict() == {"t1": 2.0, "t2": 2.5}


def test_rows_are_ordered_by_finish_time(sweep):
    write_trial(sweep, row("b", finished_at="2026-11-22T10:05:00+00:00"))
    write_trial(sweep, row("a", finished_at="2026-11-22T10:09:00+00:00"))
    write_trial(sweep, row("c", finished_at="2026-11-22T10:01:00+00:00"))
    assert read_trials(sweep).column("trial_id").to_pylist() == ["c", "b", "a"]


def test_empty_sweep_reads_as_an_empty_table_with_the_known_columns(sweep):
    table = read_trials(sweep)
    assert table.num_rows == 0 and list(table.column_names) == list(TRIAL_COLUMNS)


def test_update_pareto_writes_the_front_and_follows_rewrites(tmp_path):
    sweep = make_sweep(tmp_path)
    front = read_pareto(sweep)
    assert set(front.column("trial_id").to_pylist()) == KNOWN_FRONT
    assert json.loads(front.schema.metadata[b"raykd_objectives"]) == [
        {"metric": "accuracy", "mode": "max"}, {"metric": "speedup", "mode": "max"}]
    assert set(front.column_names) == set(read_trials(sweep).column_names)
    # t5 is re-run (resumed sweep) and now dominates everything
    write_trial(sweep, make_row("demo", "t5", "complete", 0.95, 2.0, 800_000))
    update_pareto(sweep)
    assert read_pareto(sweep).column("trial_id").to_pylist() == ["t5"]
    assert read_trials(sweep).num_rows == len(TRIALS)
    # other objectives on request
    assert set(update_pareto(sweep, "accuracy:max,params:min").column("trial_id").to_pylist()) == {"t5"}


def test_update_pareto_with_no_complete_trial_writes_an_empty_front(sweep):
    write_trial(sweep, row("t1", status="failed", acc=None, sp=None, params=None))
    assert update_pareto(sweep).num_rows == 0
    assert read_pareto(sweep).num_rows == 0


def test_sweep_meta_errors(tmp_path):
    with pytest.raises(NotASweepError, match=r"is not a raykd sweep \(no results/sweep.json\)"):
        read_sweep_meta(tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "sweep.json").write_text("{not json")
    with pytest.raises(RaykdInputError, match="not valid JSON"):
        read_sweep_meta(tmp_path)
    with pytest.raises(RaykdInputError, match="mode must be max or min"):
        write_sweep_meta(tmp_path / "x", {"objectives": [{"metric": "accuracy", "mode": "up"}]})


def test_a_corrupt_trial_file_is_named(sweep):
    write_trial(sweep, row("t1"))
    (sweep / "results" / "trials" / "t2.parquet").write_bytes(b"PAR1 torn")
    with pytest.raises(RaykdInputError, match=r"t2.parquet is not a readable trial file"):
        read_trials(sweep)
