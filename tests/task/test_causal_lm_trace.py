"""The causal-LM task's trace mode on a tiny random Llama with raykd's offline WordPiece tokenizer
(given a newline token): targets are the rendered trace + EOS with the loss on them only;
evaluation stops at the answer line, counts tokens as the tokenizer counts the text, and its bits
and parse rate agree with the generated texts; the "generate-e2e" workload times a model that
writes fewer tokens as faster on the same weights; expression mode keeps its behaviour."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F
from trace_models import tiny_llama, trace_tokenizer

from raykd.data import load_splits
from raykd.errors import ConfigError, DataError
from raykd.method.round_cost import make_measure
from raykd.stats import unpack_correct
from raykd.task.causal_lm import (
    CausalLMTask,
    target_expression,
    token_stats,
    trace_value,
)
from raykd.task.causal_lm_plugin import CausalLMPlugin
from raykd.traces.derive import derive_trace
from raykd.traces.format import Trace, cut_at_answer
from raykd.traces.tokens import count_tokens

WRONG = Trace(("We guess the answer.",), "999").render()
JUNK = "\nThen some more words that follow."


@pytest.fixture(scope="module")
def splits():
    return load_splits("synthetic:40", seed=0)


@pytest.fixture(scope="module")
def tokenizer(splits):
    return trace_tokenizer(splits, [WRONG + JUNK])


_llama = tiny_llama


def test_expression_mode_is_unchanged(splits, tokenizer):
    task = CausalLMTask(tokenizer, splits, max_new_tokens=6)
    assert task.output == "expression" and next(iter(task.workloads)) == "generate"
    _prompt, target = task.encoded("train")[0]
    assert task.prompt(splits["train"][0]).endswith("\nExpression:")
    assert target == tokenizer(" " + target_expression(splits["train"][0]), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    model = _llama(len(tokenizer)).eval()
    metrics = task.evaluate(model, "valid")
    assert set(metrics) == {"accuracy", "n", "ci_low", "ci_high", "parse_rate", "correct_bits"}
    assert task.run(model, next(task.batches("valid", 2))).shape == (2, 6)  # default: exactly max_new_tokens


def test_trace_targets_are_the_rendered_trace_plus_eos_and_the_loss_covers_them_only(splits, tokenizer):
    train = splits["train"]
    given = {train[1].id: WRONG}
    task = CausalLMTask(tokenizer, splits, output="trace", traces=given, max_target_len=400)
    rows = task.encoded("train")
    eos = tokenizer.eos_token_id
    assert rows[0][1] == tokenizer(derive_trace(train[0]).render(), add_special_tokens=False)["input_ids"] + [eos]
    assert rows[1][1] == tokenizer(WRONG, add_special_tokens=False)["input_ids"] + [eos]
    assert task.target_sources("train") == {"given": 1, "derived": len(train) - 1}
    assert "Answer: <number>" in task.prompt(train[0])
    batch = next(task.batches("train", 4))
    model = _llama(len(tokenizer))
    ids, predicts = batch["input_ids"], batch["target_mask"][:, 1:]
    assert int(predicts.sum()) == sum(len(t) for _p, t in rows[:4])
    with torch.no_grad():
        out = task.outputs(model, batch)
        logits = model(input_ids=ids, attention_mask=batch["attention_mask"]).logits[:, :-1]
        manual = F.cross_entropy(logits[predicts], ids[:, 1:][predicts])
    assert float(out.loss) == pytest.approx(float(manual), rel=1e-5)
    with pytest.raises(DataError, match="max_target_len"):  # a cut trace would lose its answer line
        CausalLMTask(tokenizer, splits, output="trace", max_target_len=20).encoded("train")
    with pytest.raises(DataError, match="has no 'Answer:' line"):
        CausalLMTask(tokenizer, splits, output="trace", traces={train[0].id: "We think."}).encoded("train")


def test_trace_answers_are_parsed_with_the_post_operation_and_never_evaluated(splits):
    p = splits["train"][0]
    assert trace_value(p, derive_trace(p).render() + "\nAnswer: 1") == pytest.approx(p.answer)  # first answer line
    assert trace_value(p, "step\nanswer : 1 2\n") == 12.0  # digits a WordPiece decoder spaced apart
    assert trace_value(p, "no answer line") is None and trace_value(p, "Answer: __import__('os')") is None
    floor = type(p)(**{**p.__dict__, "meta": {"post_op": "floor"}})
    assert trace_value(floor, "Answer: 7.5") == 7.0


def test_token_stats():
    assert token_stats([1, 2, 3, 10]) == {"tokens_mean": 4.0, "tokens_median": 2.5, "tokens_p90": 10.0, "tokens_max": 10.0}
    assert token_stats(list(range(1, 11)))["tokens_p90"] == 9.0


@pytest.fixture(scope="module")
def trained(splits, tokenizer):
    """A tiny Llama fitted to two problems: one with its derived trace followed by more text,
    one with a wrong trace; evaluated on those two problems."""
    two = list(splits["train"][:2])
    traces = {two[0].id: derive_trace(two[0]).render() + JUNK, two[1].id: WRONG}
    task = CausalLMTask(tokenizer, {"train": two, "valid": two}, output="trace", traces=traces, max_target_len=400,
                        max_new_tokens=120)
    model = _llama(len(tokenizer))
    batch = next(task.batches("train", 2))
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(200):
        optimiser.zero_grad()
        loss = task.outputs(model, batch).loss
        loss.backward()
        optimiser.step()
        if loss.item() < 0.01:
            break
    return task, model.eval(), traces


def test_evaluation_stops_at_the_answer_line_and_counts_tokens_as_the_tokenizer_does(trained, tokenizer):
    task, model, traces = trained
    preds = task.predict_with_tokens(model, "valid")
    p0, text, _ok, n = preds[0]
    assert text.splitlines()[-1].strip() == "answer : 5 3" and "more words" not in text  # cut after the answer line
    assert n == count_tokens(tokenizer, text)  # up to the answer line, EOS and the rest excluded
    assert n == count_tokens(tokenizer, cut_at_answer(traces[p0.id]))  # the memorised trace, cut
    ids = task.generate(model, next(task.batches("valid", 2)), until_done=True)
    first = ids[0].tolist()
    assert len(first) < task.max_new_tokens and first[n] in task.newline_ids().tolist()  # stopped at the newline
    assert all(t == tokenizer.pad_token_id for t in first[n + 1:])


def test_trace_evaluation_reports_bits_parse_rate_and_tokens_consistent_with_the_texts(trained, tokenizer):
    task, model, _traces = trained
    preds = task.predict_with_tokens(model, "valid")
    metrics = task.evaluate(model, "valid")
    bits = unpack_correct(metrics["correct_bits"], metrics["n"])
    assert bits == [c for _p, _t, c, _n in preds] == [True, False]  # the derived trace is right, the other wrong
    assert metrics["parse_rate"] == 1.0 and metrics["accuracy"] == 0.5
    counts = [count_tokens(tokenizer, t) for _p, t, _c, _n in preds]
    assert metrics["tokens_max"] == max(counts) and metrics["tokens_mean"] == sum(counts) / 2


def test_e2e_workload_times_a_model_that_writes_fewer_tokens_as_faster_on_the_same_weights(splits, tokenizer):
    task = CausalLMTask(tokenizer, splits, output="trace", max_target_len=400, max_new_tokens=64)
    assert next(iter(task.workloads)) == "generate-e2e"
    long = _llama(len(tokenizer)).eval()
    short = copy.deepcopy(long)
    assert all(torch.equal(a, b) for a, b in zip(long.parameters(), short.parameters()))
    eos = tokenizer.eos_token_id
    # the same weights, told how to end: one must write 64 tokens, the other ends after 8
    long.generation_config.suppress_tokens = [eos, *task.newline_ids().tolist()]
    short.generation_config.min_new_tokens = 8
    short.generation_config.sequence_bias = {(eos,): 1000.0}
    batch = next(task.batches("valid", 2))
    with torch.inference_mode():
        assert task.run(long, batch, "generate-e2e").shape[1] == 64
        assert task.run(short, batch, "generate-e2e").shape[1] == 9  # 8 tokens and EOS
    measured = make_measure(task, repeats=5, warmup=1, workload="generate-e2e")(long, short, batch)
    assert measured["latency_workload"] == "generate-e2e"
    assert measured["measured_speedup"] > 2.0  # 8 vs 64 tokens: several times faster


@pytest.mark.parametrize("options, message", [
    ({"output": "reasoning"}, "output must be one of expression, trace"),
    ({"traces": "t.json"}, "traces needs output: trace"),
    ({"output": "trace", "traces": ""}, "traces must be the path"),
    ({"output": "trace", "traces": 7}, "traces must be the path"),
])
def test_plugin_options_fail_in_one_line(options, message):
    with pytest.raises(ConfigError, match=message) as info:
        CausalLMPlugin(**options)
    assert "\n" not in str(info.value)


def test_plugin_reads_a_traces_file_and_refuses_a_bad_one(tmp_path, splits, tokenizer):
    good = tmp_path / "traces.json"
    good.write_text(json.dumps({splits["train"][0].id: "We guess.\nAnswer: 999"}))
    plugin = CausalLMPlugin(output="trace", traces=str(good), max_target_len=400)
    assert next(iter(plugin.workloads)) == "generate-e2e"
    task = plugin.task(tokenizer, splits)
    assert task.output == "trace" and task.target_sources("train")["given"] == 1
    for text, message in (("[1, 2]", "must be one JSON object"), ("{", "is not JSON")):
        (tmp_path / "bad.json").write_text(text)
        with pytest.raises(DataError, match=message):
            CausalLMPlugin(output="trace", traces=str(tmp_path / "bad.json")).trace_targets()
    with pytest.raises(DataError, match="cannot read traces file"):
        CausalLMPlugin(output="trace", traces=str(tmp_path / "missing.json")).trace_targets()


def test_plugin_reads_the_traces_jsonl_that_raykd_traces_io_writes(tmp_path, splits):
    from raykd.traces.format import Trace
    from raykd.traces.io import TraceRecord, write_traces

    path = tmp_path / "traces.jsonl"
    trace = Trace(("3 * 4 = 12",), "12")
    write_traces(path, [TraceRecord(splits["train"][0].id, trace, "file")])
    assert CausalLMPlugin(output="trace", traces=str(path)).trace_targets() == {splits["train"][0].id: trace.render()}
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(DataError, match=r"traces.jsonl:2: "):
        CausalLMPlugin(output="trace", traces=str(path)).trace_targets()


@pytest.mark.parametrize("options, message", [
    (["output=reasoning"], "output must be one of expression, trace"),
    (["traces=t.json"], "traces needs output: trace"),
    (["output=trace", "traces=no/such/traces.json"], "cannot read traces file no/such/traces.json"),
])
def test_the_cli_refuses_bad_trace_options_in_one_line_writing_nothing(options, message, tmp_path, capsys):
    from raykd.cli import main

    ws = tmp_path / "ws"
    ws.mkdir()
    argv = ["teacher", "--task", "causal-lm", "--model", "tiny", "--data", "synthetic:40", "--epochs", "1",
            "--out", str(ws / "t")]
    for option in options:
        argv += ["--task-option", option]
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("raykd: error: ") and message in lines[0], err
    assert list(ws.iterdir()) == []
