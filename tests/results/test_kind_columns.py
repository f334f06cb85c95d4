"""Each registered structure kind contributes its results columns (`raykd.results.columns`): once
the hidden-size kind is registered, a trial row, its rounds, the store's types and the view's shape
carry its counts, with no file that names the kinds changed. The built-in kinds keep the names and
the column order of the files raykd wrote before (data/format1_trial.parquet: one such file, written
through the same trial_row -> write_trial path before the columns came from the registry)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq

from raykd.distributed.trial_results import trial_row
from raykd.results.columns import count_columns, forecast_columns, total_columns
from raykd.results.store import read_trials, trial_uri, write_sweep_meta, write_trial
from raykd.results.view import render_front
from raykd.search.space import load_space
from raykd.structures.registry import structure_kinds

FORMAT1 = Path(__file__).parent / "data" / "format1_trial.parquet"
RECORD = {"round": 1, "ratio": 0.2, "accuracy": 0.7, "test_accuracy": 0.69, "speedup": 1.3, "measured_speedup": 1.25,
          "speedup_source": "latency table", "ideal_speedup": 1.4, "params": 1000, "flops": 5000, "memory_bytes": 4000,
          "heads_total": 40, "heads_original": 48, "layers_total": 5, "layers_original": 6, "ffn_channels_total": 900,
          "ffn_channels_original": 1200, "heads_kept": {"encoder": [8, 8]}, "latency_ms": 3.0, "train_s": 1.0,
          "stats_s": 0.5, "shared_stats": True}
RESULT = {"time_total_s": 12.0, "forecast_speedup": 1.28, "forecast_ideal_speedup": 1.4, "forecast_params": 1000,
          "forecast_params_reduction": 0.3, "forecast_flops": 5000, "forecast_flops_reduction": 0.2,
          "forecast_heads_total": 40, "forecast_layers_total": 5, "forecast_ffn_channels_total": 900}


def _sweep(tmp_path: Path) -> Path:
    root = tmp_path / "demo"
    write_sweep_meta(root, {"name": "demo", "objectives": "accuracy:max,speedup:max", "teacher": {"accuracy": 0.8}})
    return root


def _row(root: Path, trial_id: str, record: dict, result: dict) -> dict:
    """A trial's row as the sweep driver writes it: the round history read from its checkpoint."""
    ck = root / "train" / trial_id
    ck.mkdir(parents=True)
    (ck / "state.json").write_text(json.dumps({"records": [record]}))
    return trial_row("demo", load_space(None), SimpleNamespace(trial_id=trial_id, config={}),
                     {"checkpoint_path": str(ck), **result}, "complete", None, str(root))


def test_the_built_in_kinds_keep_their_column_names():
    """(first: a kind registered by default after them would follow)"""
    assert count_columns()[:6] == ("heads_total", "heads_original", "ffn_channels_total", "ffn_channels_original",
                                   "layers_total", "layers_original")
    assert total_columns()[:3] == ("layers_total", "heads_total", "ffn_channels_total")
    assert forecast_columns()[:3] == ("forecast_heads_total", "forecast_ffn_channels_total", "forecast_layers_total")


def test_a_registered_kind_s_columns_reach_the_results_table(hidden_kind, tmp_path):
    root = _sweep(tmp_path)
    record = {**RECORD, "hidden_channels_total": 48, "hidden_channels_original": 64, "hidden_kept": {"encoder_hidden": [48]}}
    write_trial(root, _row(root, "t1", record, {**RESULT, "forecast_hidden_channels_total": 48}))

    table = read_trials(root)
    types = {f.name: str(f.type) for f in table.schema}
    for column in ("hidden_channels_total", "hidden_channels_original", "forecast_hidden_channels_total"):
        assert types.get(column) == "int64", column
    df = table.to_pandas()
    assert (df.hidden_channels_total[0], df.hidden_channels_original[0], df.forecast_hidden_channels_total[0]) == (48, 64, 48)
    assert json.loads(df.rounds_json[0])[0]["hidden_channels_total"] == 48  # the round history keeps it too

    shown = render_front(df, columns="default", fmt="table", width=200)
    assert "5L·40H·900F·48 hidden" in shown
    raw = render_front(df, columns="default", fmt="csv")
    assert "hidden_channels_total" in raw.splitlines()[0]


def test_a_trial_file_of_format_1_loads_beside_a_new_one(tmp_path):
    root = _sweep(tmp_path)
    old_uri = Path(trial_uri(root, "t0"))
    old_uri.parent.mkdir(parents=True)
    shutil.copyfile(FORMAT1, old_uri)
    write_trial(root, _row(root, "t1", RECORD, RESULT))

    old, new = pq.read_table(old_uri).schema, pq.read_table(trial_uri(root, "t1")).schema
    assert [n for n in new.names if n in old.names] == old.names  # same columns, same order, ...
    assert all(new.field(n).type == old.field(n).type for n in old.names)  # ... same types
    plugins = {c for k in structure_kinds() if k.name not in ("heads", "ffn", "layers")
               for c in (k.total_key, k.original_key, k.forecast_key)}
    assert set(new.names) - set(old.names) == {"forecast_ffn_channels_total", "forecast_layers_total", *plugins}  # only added

    df = read_trials(root).to_pandas().set_index("trial_id")
    for tid in ("t0", "t1"):
        assert (df.loc[tid, "heads_total"], df.loc[tid, "ffn_channels_original"], df.loc[tid, "forecast_heads_total"]) == (40, 1200, 40)
    (was,), (now,) = json.loads(df.loc["t0", "rounds_json"]), json.loads(df.loc["t1", "rounds_json"])
    assert {k: now[k] for k in was} == was  # the same round, every key it had (a plug-in kind may add its own)
    assert df.loc["t1", "forecast_layers_total"] == 5 and df["forecast_layers_total"].isna().sum() == 1  # t0 never had it
    assert render_front(df.reset_index(), fmt="table", width=200).count("5L·40H·900F") == 2


def test_no_kind_s_original_total_is_offered_as_an_objective(hidden_kind):
    """A kind's original count is the teacher's, the same in every row: bookkeeping, not an objective
    (its final total is one)."""
    import pandas as pd

    from raykd.results.columns import original_columns
    from raykd.results.pareto import metric_columns

    row = {"accuracy": 0.7, "speedup": 1.3, **{c: 10 for c in count_columns()}}
    known = metric_columns(pd.DataFrame([row]))
    assert set(original_columns()) == {"heads_original", "ffn_channels_original", "layers_original",
                                       "hidden_channels_original"}
    assert not set(original_columns()) & set(known)
    assert set(total_columns()) <= set(known)
