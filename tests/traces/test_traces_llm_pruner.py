"""The LLM-prompted pruner: a rewrite is kept only if it parses, reaches the gold answer and is
shorter; anything else is rejected, counted, and the original kept. The mechanics run on a tiny
random Llama with a real tokenizer, whose garbage must never be accepted."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from raykd.task.causal_lm import add_newline_token
from raykd.task.encoders import train_tiny_tokenizer
from raykd.traces.derive import derive_trace
from raykd.traces.llm_pruner import HFGenerator, llm_prune_traces, pruning_prompt


def _fixed(outputs: list[str]):
    """A generator that answers with the given texts (what a model might write), recording prompts."""
    seen: list[str] = []

    def generate(prompts: Sequence[str]) -> list[str]:
        seen.extend(prompts)
        return list(outputs)

    generate.seen = seen  # type: ignore[attr-defined]
    return generate


def test_only_shorter_gold_reaching_rewrites_are_kept(problem) -> None:
    p = problem((12.0, 5.0), ("-", "N0", "N1"), 7.0)
    trace = derive_trace(p, 0)
    outputs = [
        "12 - 5 = 7\nAnswer: 7\nextra",  # kept (cut at the answer line)
        "12 + 5 = 17\nAnswer: 17",  # wrong answer
        "Sure! The answer is 7.",  # no answer line
        "12 - 5 = 8\n8 - 1 = 7\nAnswer: 7",  # wrong arithmetic
        "Answer: 7",  # the answer without a chain
        trace.render() + "\nI double-checked all of it.",  # not shorter
    ]
    generate = _fixed(outputs)
    outcome = llm_prune_traces([trace] * 6, [p] * 6, generate)
    assert outcome.pruned == [True, False, False, False, False, False]
    assert outcome.traces[0].steps == ("12 - 5 = 7",) and all(t == trace for t in outcome.traces[1:])
    assert outcome.rejected == {"wrong-answer": 1, "no-answer-line": 1, "wrong-arithmetic": 1, "no-chain": 1, "not-shorter": 1}
    assert generate.seen[0] == pruning_prompt(p, trace) and trace.render() in generate.seen[0]


def test_a_generator_returning_the_wrong_count_is_refused(problem) -> None:
    p = problem((12.0, 5.0), ("-", "N0", "N1"), 7.0)
    with pytest.raises(ValueError, match="returned 0 texts for 1 prompts"):
        llm_prune_traces([derive_trace(p)], [p], _fixed([]))


def test_a_tiny_random_llama_runs_the_pipeline_and_its_garbage_is_rejected(problem) -> None:
    problems = [problem((12.0, 5.0), ("-", "N0", "N1"), 7.0, pid="a"), problem((3.0, 4.0), ("*", "N0", "N1"), 12.0, pid="b"),
                problem((9.0, 2.0), ("+", "N0", "N1"), 11.0, pid="c")]
    traces = [derive_trace(p, 0) for p in problems]
    prompts = [pruning_prompt(p, t) for p, t in zip(problems, traces)]
    tok = train_tiny_tokenizer(prompts, vocab_size=300)
    tok.eos_token = "[SEP]"
    add_newline_token(tok)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                                         max_position_embeddings=1024, pad_token_id=tok.pad_token_id))
    model.train()
    generate = HFGenerator(model, tok, max_new_tokens=12, batch_size=2)
    texts = generate(prompts)
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    assert texts == generate(prompts)  # greedy: the same texts again
    assert tok.padding_side == "right" and model.training  # the tokenizer's and model's own settings restored
    outcome = llm_prune_traces(traces, problems, generate)
    assert outcome.traces == traces and outcome.pruned == [False] * 3 and outcome.rejection_count == 3
