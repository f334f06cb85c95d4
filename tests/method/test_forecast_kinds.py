"""The forecast counts every registered structure kind (`forecast_<count_key>_total`): a kind
registered as a plug-in (the hidden-size kind) gets its forecast with no change to the forecast,
and it is exactly what the chain's final round counts."""

from __future__ import annotations

from raykd.method.chain import Chain
from raykd.method.config import ChainConfig
from raykd.method.forecast import forecast
from raykd.method.importance import collect_stats
from raykd.method.round_cost import make_measure
from raykd.method.schedule import units_removed_by
from raykd.structures import structure_counts
from raykd.structures.hidden import find_hidden
from raykd.task.io import SolverIO, load_solver
from raykd.task.mwp import MWPTask

FAST = dict(rounds=2, p_min=0.0, p_max=0.0, epochs_per_round=1, steps_per_round=2, lr=1e-3, calib_batches=2,
            calib_batch_size=16, latency_batch=4, latency_repeats=1, patience=1, test_every_round=False)
P_MAX = 0.25


def test_the_built_in_kinds_are_each_forecast(quick_teacher_dir, synthetic_splits):
    teacher, tok, _ = load_solver(quick_teacher_dir)
    task = MWPTask(tok, teacher.vocab, synthetic_splits)
    stats = collect_stats(teacher, task, batches=2, batch_size=16)
    told = forecast(teacher, stats, ChainConfig(p_min=0.0, p_max=0.0))  # nothing pruned: the teacher's own counts
    counts = structure_counts(teacher)
    assert {k: told[k] for k in ("forecast_heads_total", "forecast_ffn_channels_total", "forecast_layers_total")} == {
        "forecast_heads_total": counts["heads"], "forecast_ffn_channels_total": counts["ffn_channels"],
        "forecast_layers_total": counts["layers"]}


def test_a_registered_kind_is_forecast(hidden_kind, quick_teacher_dir, synthetic_splits, tmp_path):
    teacher, tok, _ = load_solver(quick_teacher_dir)
    task = MWPTask(tok, teacher.vocab, synthetic_splits)
    width = find_hidden(teacher).width
    cfg = ChainConfig.from_dict({**FAST, "hidden_p_min": P_MAX / 2, "hidden_p_max": P_MAX})
    stats = collect_stats(teacher, task, batches=2, batch_size=16, ffn=False, layers=False, kinds=["hidden"])

    told = forecast(teacher, stats, cfg)
    assert told["forecast_hidden_channels_total"] == width - units_removed_by(P_MAX, width) < width
    assert told["forecast_heads_total"] == structure_counts(teacher)["heads"]  # nothing else moves

    final = Chain(task, teacher, cfg, SolverIO(tok), tmp_path, make_measure(task, repeats=1), teacher_stats=stats,
                  progress=False, log=lambda _m: None).run().records[-1]
    assert told["forecast_hidden_channels_total"] == final["hidden_channels_total"]
    assert told["forecast_params"] == final["params"]
    without = type(stats)(heads=stats.heads, ffn=stats.ffn, layers=stats.layers)  # no hidden statistics: no forecast
    assert forecast(teacher, without, cfg) == {}
