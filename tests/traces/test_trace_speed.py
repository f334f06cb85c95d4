"""A trace model's table-priced speed: the latency table's per-token price of its shape times the
tokens it writes, from its own validation generations (`raykd.traces.speed`).

The pure function on hand-computed cases; then real parts (tiny random Llama, raykd's WordPiece
with a newline token, a real latency table timed on `generate`, the real measure and evaluation):
two models of one shape, one made to stop early, are priced alike per token and ranked by the
tokens they write; a real chain round in trace mode records the token-priced figure; expression
mode and the MWP solver get nothing from it (their records unchanged); a space that would price
traces with a table timed on `generate-e2e` is refused before anything runs."""

from __future__ import annotations

import copy

import pytest
from trace_models import tiny_llama, trace_tokenizer
from transformers import LlamaForCausalLM

from raykd.data import load_splits
from raykd.errors import ConfigError
from raykd.method.chain import Chain
from raykd.method.config import ChainConfig
from raykd.measure.latency import build_latency_table
from raykd.method.round_cost import make_measure
from raykd.task.causal_lm import CausalLMTask
from raykd.task.hf_io import CausalLMIO
from raykd.traces.speed import (
    TOKEN_PRICED_SOURCE,
    TokenCountError,
    check_priced_workload,
    retime_workload,
    token_priced_fields,
    token_priced_speedup,
)

NEW_TOKENS = 16


# --- the pure function ----------------------------------------------------------------------------


def test_same_tokens_give_the_tables_per_token_ratio():
    assert token_priced_speedup(1.37, 50, 50) == 1.37
    assert token_priced_speedup(1.37, 50, 50, prompt_tokens=12) == 1.37
    assert token_priced_speedup(1.0, 7, 7) == 1.0


def test_fewer_tokens_at_the_same_price_rank_faster():
    assert token_priced_speedup(1.0, 80, 20) == 4.0  # a quarter of the tokens, same shape
    assert token_priced_speedup(1.0, 80, 20, prompt_tokens=20) == 2.5  # (20 + 80) / (20 + 20)
    assert token_priced_speedup(1.5, 80, 40) == 3.0  # both axes: shape 1.5x, tokens 2x
    assert token_priced_speedup(1.5, 40, 80) == 0.75  # a student that writes more is slower than its shape


@pytest.mark.parametrize("ref, own, prompt", [(None, 10, 0.0), (10, None, 0.0), (10, float("nan"), 0.0), (-1, 10, 0.0),
                                              (10, True, 0.0), (10, 0, 0.0), (10, 5, -1.0)])
def test_a_missing_or_impossible_token_count_is_an_error(ref, own, prompt):
    with pytest.raises(TokenCountError):
        token_priced_speedup(1.2, ref, own, prompt_tokens=prompt)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), None])
def test_the_table_speedup_must_be_a_positive_number(bad):
    with pytest.raises(ValueError):
        token_priced_speedup(bad, 10, 10)


def test_only_generate_prices_a_shape_per_token():
    check_priced_workload("generate")
    for other in ("generate-e2e", "forward", None):
        with pytest.raises(ConfigError, match="cannot price a trace model per token"):
            check_priced_workload(other)


# --- real parts -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def splits():
    return load_splits("synthetic:40", seed=0)


@pytest.fixture(scope="module")
def tokenizer(splits):
    return trace_tokenizer(splits)


def _llama(vocab: int, seed: int = 0) -> LlamaForCausalLM:
    return tiny_llama(vocab, seed).eval()


@pytest.fixture(scope="module")
def trace_task(splits, tokenizer):
    return CausalLMTask(tokenizer, splits, output="trace", max_target_len=400, max_new_tokens=NEW_TOKENS)


@pytest.fixture(scope="module")
def table(trace_task, tokenizer):
    batch = next(trace_task.batches("valid", 2))
    return build_latency_table(trace_task, _llama(len(tokenizer)), batch, rounds=2, warmup=0, threads=1,
                               workload="generate", calibration=0)


def test_same_shape_fewer_tokens_is_faster_by_the_token_ratio(trace_task, tokenizer, table):
    long = _llama(len(tokenizer))
    short = copy.deepcopy(long)  # the same weights and shape: the same per-token price
    eos = tokenizer.eos_token_id
    long.generation_config.suppress_tokens = [eos, *trace_task.newline_ids().tolist()]  # writes all 16 tokens
    short.generation_config.min_new_tokens = 4
    short.generation_config.sequence_bias = {(eos,): 1000.0}  # ends after 4
    batch = next(trace_task.batches("valid", 2))
    measure = make_measure(trace_task, repeats=1, warmup=0, threads=1, table=table, workload="generate")
    long_valid, short_valid = trace_task.evaluate(long, "valid"), trace_task.evaluate(short, "valid")
    assert long_valid["tokens_mean"] == NEW_TOKENS and short_valid["tokens_mean"] == 4

    own = measure(long, short, batch)
    assert own["speedup"] == 1.0 and own["speedup_source"] == "latency table"  # the table sees one shape
    priced = token_priced_fields(trace_task, own, short_valid, long_valid)
    assert priced["speedup_source"] == TOKEN_PRICED_SOURCE and priced["table_speedup"] == 1.0
    assert priced["speedup"] == NEW_TOKENS / 4  # ranked faster, by the tokens it does not write
    same = token_priced_fields(trace_task, measure(long, long, batch), long_valid, long_valid)
    assert same["speedup"] == 1.0 == same["table_speedup"]  # same tokens: the table's per-token ratio

    with pytest.raises(TokenCountError, match="the model's valid metrics hold no tokens_mean"):
        token_priced_fields(trace_task, own, {k: v for k, v in short_valid.items() if k != "tokens_mean"}, long_valid)
    with pytest.raises(TokenCountError, match="the teacher's"):
        token_priced_fields(trace_task, own, short_valid, None)


def test_other_tasks_and_measured_speed_are_left_alone(splits, tokenizer, trace_task, table):
    """Expression mode, the MWP solver and a measured figure: nothing replaced, whatever the metrics."""
    from raykd.task.mwp import MWPTask
    from raykd.task.teacher import SolverSpec, build_solver_from_spec

    priced_by_table = {"speedup": 1.3, "speedup_source": "latency table", "latency_workload": "generate"}
    expression = CausalLMTask(tokenizer, splits, max_new_tokens=8)
    assert token_priced_fields(expression, priced_by_table, {"accuracy": 0.1}, {"accuracy": 0.2}) == {}
    solver, solver_tok = build_solver_from_spec(SolverSpec(preset="tiny"), splits["train"])
    mwp = MWPTask(solver_tok, solver.vocab, splits)
    assert token_priced_fields(mwp, priced_by_table, None, None) == {}
    measured = {**priced_by_table, "speedup_source": "measured", "latency_workload": "generate-e2e"}
    assert token_priced_fields(trace_task, measured, None, None) == {}


def test_a_token_priced_front_is_re_timed_end_to_end(splits, tokenizer, trace_task):
    """Re-timing measures directly what the token-priced figure estimates (raykd.analysis.retime)."""
    assert retime_workload(trace_task, "generate") == "generate-e2e"
    assert retime_workload(trace_task, "forward") == "forward"
    assert retime_workload(CausalLMTask(tokenizer, splits, max_new_tokens=8), "generate") == "generate"


def test_a_chain_round_in_trace_mode_records_the_token_priced_speed(trace_task, tokenizer, table, tmp_path):
    teacher = _llama(len(tokenizer))
    cfg = ChainConfig(p_min=0.25, p_max=0.25, rounds=1, epochs_per_round=1, steps_per_round=2, batch_size=8, lr=1e-3,
                      calib_batches=1, calib_batch_size=8, latency_batch=2, latency_repeats=1,
                      latency_workload="generate")
    measure = make_measure(trace_task, repeats=1, warmup=0, threads=1, table=table, workload="generate")
    result = Chain(trace_task, teacher, cfg, CausalLMIO(teacher.config.to_dict(), tokenizer), tmp_path / "chain",
                   measure, progress=False, log=lambda _m: None).run()
    rec = result.records[-1]
    ref, own = result.teacher_metrics["valid"]["tokens_mean"], rec["valid"]["tokens_mean"]
    assert rec["speedup_source"] == TOKEN_PRICED_SOURCE
    assert rec["speedup_tokens"] == own and rec["speedup_reference_tokens"] == ref
    assert rec["speedup"] == pytest.approx(rec["table_speedup"] * ref / own, rel=1e-12)
    assert rec["table_speedup"] == table.predicted_speedup_of(result.model)


def test_a_trace_space_priced_by_a_table_timed_end_to_end_is_refused(tmp_path):
    from sweep_spaces import small_space

    from raykd.search.space import parse_space

    raw = small_space(tmp_path / "teacher", tmp_path / "runs")
    raw.update(task={"name": "causal-lm", "output": "trace", "max_target_len": 256}, teacher={"model": "tiny"})
    with pytest.raises(ConfigError, match="speed.source table with output: trace: a latency table timed on 'generate-e2e'"):
        parse_space(raw)
    raw["fixed"] = {**raw.get("fixed", {}), "latency_workload": "generate"}
    assert parse_space(raw).speed["source"] == "table"
    raw["fixed"].pop("latency_workload")
    assert parse_space({**raw, "speed": {"source": "measured"}}).speed["source"] == "measured"
