"""A trace task's real parts for the trace tests (tests/traces/test_trace_speed.py,
tests/task/test_causal_lm_trace.py): raykd's offline WordPiece tokenizer trained on the problems,
their derived traces and expressions (with a newline token, which WordPiece alone drops), and a tiny
random Llama of its vocabulary. Nothing is downloaded."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from raykd.task.causal_lm import add_newline_token, target_expression
from raykd.task.encoders import train_tiny_tokenizer
from raykd.traces.derive import derive_trace

PROMPT_WORDS = "Problem: Expression: Answer: + - * / ^ ( ) . 0 1 2 3 4 5 6 7 8 9"


def trace_tokenizer(splits: dict, extra_texts: Iterable[str] = ()):
    """A WordPiece tokenizer for `splits`' texts, traces and expressions (EOS = [SEP], newline added)."""
    problems = [p for s in splits.values() for p in s]
    texts = [p.text for p in problems] + [derive_trace(p).render() for p in problems] + [target_expression(p) for p in problems]
    tok = train_tiny_tokenizer(texts + [*extra_texts, PROMPT_WORDS], vocab_size=1000)
    tok.eos_token = "[SEP]"
    assert add_newline_token(tok)
    return tok


def tiny_llama(vocab: int, seed: int = 0) -> LlamaForCausalLM:
    """A seeded random 2-layer Llama with grouped K/V heads (train mode, as from_config leaves it)."""
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                        max_position_embeddings=512, pad_token_id=0))
