"""A prune-free chain round (`prune: false`: distillation alone, as the trace benchmark's student)
collects no importance statistics: nothing is ranked, so the calibration pass was pure waste (for
SmolLM2 a forward-backward over calibration batches of 256-token traces). Its record keeps every key
a pruning round's has (the results store and CLI printing read them), with nothing removed, and it
is still timed against the teacher: a trace student of the teacher's shape is faster by its tokens.

Real parts: raykd's WordPiece with a newline token, a tiny random Llama, the real trace task,
measure and chain; `collect_stats` is replaced by a function that fails the test if it is called."""

from __future__ import annotations

import pytest
from trace_models import tiny_llama, trace_tokenizer

import raykd.method.chain as chain_module
from raykd.data import load_splits
from raykd.method.chain import Chain
from raykd.method.config import ChainConfig
from raykd.method.round_cost import make_measure
from raykd.task.causal_lm import CausalLMTask
from raykd.task.hf_io import CausalLMIO

COMMON = {"rounds": 1, "epochs_per_round": 1, "steps_per_round": 2, "batch_size": 4, "lr": 1e-3, "calib_batches": 1,
          "calib_batch_size": 4, "latency_batch": 2, "latency_repeats": 1, "latency_workload": "generate-e2e", "seed": 0}


@pytest.fixture(scope="module")
def task():
    splits = {k: v[:8] for k, v in load_splits("synthetic:40", seed=0).items()}
    return CausalLMTask(trace_tokenizer(splits), splits, output="trace", max_target_len=400, max_new_tokens=6)


def _chain(task, cfg, out):
    teacher = tiny_llama(len(task.tokenizer)).eval()
    measure = make_measure(task, repeats=1, warmup=0, threads=1, workload="generate-e2e")
    return Chain(task, teacher, cfg, CausalLMIO(teacher.config.to_dict(), task.tokenizer), out, measure,
                 progress=False, log=lambda _m: None)


def test_a_prune_free_round_collects_no_statistics_and_keeps_every_record_key(task, tmp_path, monkeypatch):
    pruned = _chain(task, ChainConfig(p_min=0.25, p_max=0.25, **COMMON), tmp_path / "pruned").run().records[-1]

    def no_calibration(*_args, **_kwargs):
        raise AssertionError("a round that removes nothing collected importance statistics")

    monkeypatch.setattr(chain_module, "collect_stats", no_calibration)
    free = _chain(task, ChainConfig(prune=False, p_min=0.0, p_max=0.0, **COMMON), tmp_path / "free").run()
    rec = free.records[-1]
    assert set(rec) == set(pruned)  # what the results store and the CLI read
    assert rec["heads_removed_now"] == 0 and rec["structures"] == rec["structures_original"]
    assert rec["params_reduction"] == 0.0 and rec["shared_stats"] is False and rec["stats_s"] < 0.05
    assert rec["latency_workload"] == "generate-e2e" and rec["measured_speedup"] > 0  # still timed
    assert pruned["heads_removed_now"] > 0  # (the pruning chain did rank and remove heads)


def test_a_prune_free_round_ignores_shared_teacher_statistics(task, tmp_path, monkeypatch):
    """A sweep may hand every chain the teacher's statistics: a round that removes nothing uses none."""
    from raykd.method.importance import collect_stats

    teacher_stats = collect_stats(tiny_llama(len(task.tokenizer)).eval(), task, batches=1, batch_size=4)
    monkeypatch.setattr(chain_module, "collect_stats", lambda *_a, **_k: pytest.fail("statistics collected"))
    chain = _chain(task, ChainConfig(prune=False, p_min=0.0, p_max=0.0, **COMMON), tmp_path / "free")
    chain.teacher_stats = teacher_stats
    rec = chain.run().records[-1]
    assert rec["shared_stats"] is False and rec["heads_removed_now"] == 0
