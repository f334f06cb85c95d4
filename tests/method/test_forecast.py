"""A configuration's final model, known before it trains: exact params and FLOPs always, the
latency table's speedup exactly when every layer of a kind ends alike (uniform_shape)."""

from __future__ import annotations

import pytest

from raykd.method.chain import Chain
from raykd.method.config import ChainConfig
from raykd.method.forecast import forecast
from raykd.method.importance import collect_stats
from raykd.measure.latency import build_latency_table
from raykd.method.round_cost import make_measure
from raykd.task.io import SolverIO, load_solver
from raykd.task.mwp import MWPTask

FAST = dict(rounds=2, p_min=0.1, p_max=0.5, ffn_p_max=0.5, layer_p_max=0.5, epochs_per_round=1, steps_per_round=3,
            lr=1e-3, calib_batches=2, calib_batch_size=16, latency_batch=4, latency_repeats=1, patience=2)


@pytest.fixture(scope="module")
def setup(tiny_teacher_dir, synthetic_splits):
    teacher, tok, _ = load_solver(tiny_teacher_dir)
    task = MWPTask(tok, teacher.vocab, synthetic_splits)
    batch = next(iter(task.batches("valid", 4)))
    stats = collect_stats(teacher, task, batches=2, batch_size=16, ffn=True, layers=True)
    table = build_latency_table(task, teacher, batch, rounds=2, warmup=0, threads=1)
    return teacher, tok, task, batch, stats, table


@pytest.mark.parametrize("uniform", [False, True])
def test_the_forecast_matches_the_chain_s_final_model(setup, tmp_path, uniform):
    teacher, tok, task, batch, stats, table = setup
    cfg = ChainConfig(**FAST, uniform_shape=uniform)
    told = forecast(teacher, stats, cfg, table=table, task=task, batch=batch)
    final = Chain(task, teacher, cfg, SolverIO(tok), tmp_path, make_measure(task, repeats=1, warmup=0, threads=1, table=table),
                  teacher_stats=stats, progress=False, log=lambda _m: None).run().records[-1]
    assert final["heads_total"] < final["heads_original"] and final["layers_total"] < final["layers_original"]
    assert told["forecast_params"] == final["params"] and told["forecast_flops"] == final["flops"]
    assert told["forecast_heads_total"] == final["heads_total"]
    assert told["forecast_ideal_speedup"] == pytest.approx(final["ideal_speedup"], rel=1e-12)
    assert final["speedup_source"] == "latency table"
    if uniform:
        assert told["forecast_speedup"] == final["speedup"]
    else:  # the split of heads between layers may differ; the table's figure stays close
        assert told["forecast_speedup"] == pytest.approx(final["speedup"], rel=0.05)


def test_no_statistics_no_forecast(setup):
    teacher, _, _, _, stats, _ = setup
    assert forecast(teacher, None, ChainConfig(**FAST)) == {}
    heads_only = type(stats)(heads=stats.heads)
    assert forecast(teacher, heads_only, ChainConfig(**FAST)) == {}  # FFN and layer statistics are needed
    told = forecast(teacher, stats, ChainConfig(p_min=0.0, p_max=0.0))  # nothing pruned: the teacher itself
    assert told["forecast_params_reduction"] == 0.0
