"""Trace pruning as a setting of the causal-LM task: a student's targets are its source traces
pruned by exactly the rules `rules_for_strength` maps the task's `trace_strength` to; a prune that
no longer reaches the gold keeps the unpruned trace and is counted in `target_record`; the
plug-in validates the trace settings on construction (one line each)."""

from __future__ import annotations

import json

import pytest

from raykd.data import load_splits
from raykd.errors import ConfigError
from raykd.task.causal_lm import CausalLMTask, add_newline_token
from raykd.task.causal_lm_plugin import CausalLMPlugin
from raykd.task.encoders import train_tiny_tokenizer
from raykd.traces.derive import derive_trace
from raykd.traces.format import parse_trace
from raykd.traces.prune import RULE_ORDER, apply_rules, rules_for_strength

VERBOSE = ("The question asks: How many are left?\nWe know: There are 12 things.\nThat gives 12 - 5 = 7.\n"
           "Check: 7 + 5 = 12.\nTherefore the answer is 7.\nAnswer: 7")
RESTS_ON_CHECK = "So 10 + 2 = 12.\nCheck: 12 - 5 = 7.\nAnswer: 7"  # pruning the check loses the only step giving 7
MISSES_GOLD = "We know 12 and 5.\n12 + 5 = 17\nAnswer: 17"


@pytest.fixture
def problems(problem):
    return [problem((12.0, 5.0), ("-", "N0", "N1"), 7.0, pid=f"h{i}") for i in range(3)]


@pytest.fixture(scope="module")
def tokenizer():
    splits = load_splits("synthetic:40", seed=0)
    texts = [p.text for s in splits.values() for p in s] + [derive_trace(p).render() for s in splits.values() for p in s]
    tok = train_tiny_tokenizer(texts + [VERBOSE, RESTS_ON_CHECK, MISSES_GOLD, "Answer: 0 1 2 3 4 5 6 7 8 9"], vocab_size=800)
    tok.eos_token = "[SEP]"
    add_newline_token(tok)
    return tok


def _task(tokenizer, splits, **kw) -> CausalLMTask:
    return CausalLMTask(tokenizer, splits, output="trace", max_target_len=400, **kw)


@pytest.mark.parametrize("strength", [0.0, 0.2, 0.25, 0.5, 0.7, 0.75, 1.0])
def test_targets_are_the_source_traces_pruned_by_the_rules_of_the_strength(tokenizer, strength):
    splits = load_splits("synthetic:40", seed=0)
    task = _task(tokenizer, splits, trace_strength=strength)
    for p in splits["train"]:
        source = derive_trace(p, seed=0)
        rules = rules_for_strength(strength)
        want = apply_rules(source, rules, p.meta.get("post_op")).render() if rules else source.render()
        assert task.target_text(p) == want
    rows = task.encoded("train")
    record = task.target_record("train")
    assert record["strength"] == strength and record["derived"] == len(rows) and record["rejected"] == 0
    assert record["pruned"] == (len(rows) if rules_for_strength(strength) else 0)
    assert record["tokens_mean"] == pytest.approx(sum(len(t) - 1 for _p, t in rows) / len(rows))  # EOS excluded
    assert task.target_sources("train") == {"given": 0, "derived": len(rows)}


def test_stronger_pruning_gives_shorter_targets_and_the_fingerprint_follows_the_strength(tokenizer):
    splits = load_splits("synthetic:40", seed=0)
    means = [_task(tokenizer, splits, trace_strength=s).target_record("train")["tokens_mean"] for s in (0.0, 0.75, 1.0)]
    assert means[0] > means[1] > means[2]
    prints = {s: _task(tokenizer, splits, trace_strength=s).fingerprint() for s in (0.0, 0.25, 1.0)}
    assert len(set(prints.values())) == 3  # a resumed chain never mixes targets of two strengths
    assert prints[0.0] == _task(tokenizer, splits).fingerprint()


@pytest.mark.parametrize("strength", [0.25, 0.5, 0.75, 1.0])
def test_a_prune_that_loses_the_gold_falls_back_to_the_unpruned_trace_and_is_counted(tokenizer, problems, strength):
    given = {"h0": RESTS_ON_CHECK, "h1": VERBOSE, "h2": MISSES_GOLD}
    task = _task(tokenizer, {"train": problems}, traces=given, trace_strength=strength)
    rows = task.encoded("train")
    record = task.target_record("train")
    assert record == {"strength": strength, "given": 3, "derived": 0, "pruned": 1, "rejected": 2,
                      "rejected_no-chain": 1, "rejected_original-fails": 1,
                      "tokens_mean": pytest.approx(sum(len(t) - 1 for _p, t in rows) / 3)}
    eos = [tokenizer.eos_token_id]
    assert rows[0][1] == tokenizer(RESTS_ON_CHECK, add_special_tokens=False)["input_ids"] + eos  # unpruned
    assert rows[2][1] == tokenizer(MISSES_GOLD, add_special_tokens=False)["input_ids"] + eos
    pruned = apply_rules(parse_trace(VERBOSE), rules_for_strength(strength)).render()
    assert pruned != VERBOSE and rows[1][1] == tokenizer(pruned, add_special_tokens=False)["input_ids"] + eos
    unpruned = _task(tokenizer, {"train": problems}, traces=given).target_record("train")
    assert unpruned["rejected"] == 0 and unpruned["pruned"] == 0  # strength 0 prunes nothing, so rejects nothing


def test_full_strength_is_every_rule():
    assert rules_for_strength(1.0) == RULE_ORDER
    with pytest.raises(ValueError, match="strength"):
        rules_for_strength(True)  # YAML's `true` is no strength


@pytest.mark.parametrize("options, message", [
    ({"output": "trace", "trace_strength": 1.5}, "trace_strength: pruning strength must be a number in [0, 1], got 1.5"),
    ({"output": "trace", "trace_strength": True}, "trace_strength: pruning strength must be a number in [0, 1], got True"),
    ({"output": "trace", "trace_strength": "strong"}, "pruning strength must be a number in [0, 1], got 'strong'"),
    ({"trace_strength": 0.5}, "trace_strength needs output: trace"),
    ({"output": "trace", "trace_source": "teacher"}, "trace_source must be one of derived, file, got 'teacher'"),
    ({"output": "trace", "trace_source": "file"}, "trace_source file needs traces: FILE"),
    ({"trace_source": "derived"}, "trace_source needs output: trace"),
])
def test_the_plugin_refuses_bad_trace_settings_in_one_line(options, message):
    with pytest.raises(ConfigError) as info:
        CausalLMPlugin(**options)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_plugin_passes_strength_and_source_to_the_task(tokenizer, problems, tmp_path):
    path = tmp_path / "traces.json"
    path.write_text(json.dumps({"h0": RESTS_ON_CHECK}))
    splits = {"train": problems}
    from_file = CausalLMPlugin(output="trace", traces=str(path), trace_strength=1.0, max_target_len=400).task(tokenizer, splits)
    assert from_file.trace_strength == 1.0 and from_file.target_record("train")["given"] == 1
    derived = CausalLMPlugin(output="trace", traces=str(path), trace_source="derived", max_target_len=400)
    assert derived.trace_targets() is None
    assert derived.task(tokenizer, splits).target_sources("train") == {"given": 0, "derived": 3}
    assert CausalLMPlugin.searchable_options == ("trace_strength", "trace_source")
