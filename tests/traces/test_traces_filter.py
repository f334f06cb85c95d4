"""The correctness filter: a generation is kept only if it has an answer line whose value (post-
operation applied, as the causal-LM task does) matches the gold; rejections counted by reason."""

from __future__ import annotations

import pytest

from raykd.traces.filter import answer_verdict, filter_traces, read_generation


def test_kept_and_rejected_by_reason(problem) -> None:
    p = problem((12.0, 5.0), ("-", "N0", "N1"), 7.0)
    texts = [
        "12 - 5 = 7\nAnswer: 7\nAnswer: 9 and then some rambling",  # cut at the first answer line
        "12 - 5 = 7\nanswer : 7 (apples)",
        "12 - 5 = 7\nso the answer is 7",  # no answer line
        "12 - 5 = 7\nAnswer: seven",
        "12 + 5 = 17\nAnswer: 17",
        "Answer: __import__('os').system('echo hi')",  # never evaluated as code
        "12 - 5 = 7\nAnswer: 7.00003",  # within the relative tolerance
    ]
    outcome = filter_traces(texts, [p] * len(texts))
    assert [i for i, _ in outcome.kept] == [0, 1, 6]
    assert outcome.kept[0][1].steps == ("12 - 5 = 7",) and outcome.kept[0][1].answer == "7"
    assert outcome.rejected == {"no-answer-line": 1, "unparseable-answer": 2, "wrong-answer": 1}
    assert outcome.total == 7 and outcome.keep_rate == pytest.approx(3 / 7)


def test_post_operation_and_written_precision(problem) -> None:
    floor = problem((15.0, 122.0), ("/", "N1", "N0"), 8.0, post_op="floor")
    assert answer_verdict(read_generation("122 / 15 = 8.13\nAnswer: 8.13"), floor) is None  # floored as the task does
    assert answer_verdict(read_generation("Answer: 9"), floor) == "wrong-answer"
    rounded = problem((10.0, 3.0), ("/", "N0", "N1"), 3.333, answer_text="3.333")
    assert answer_verdict(read_generation("Answer: 3.3333333"), rounded) is None
    integer = problem((12.0,), ("+", "N0", "0"), 12.0)
    assert answer_verdict(read_generation("Answer: 12.4"), integer) == "wrong-answer"
    assert answer_verdict(read_generation("Answer: 1 2"), integer) is None  # digits a tokenizer decoded apart


def test_one_generation_per_problem(problem) -> None:
    with pytest.raises(ValueError, match="2 generations for 1 problems"):
        filter_traces(["Answer: 1", "Answer: 2"], [problem((1.0,), ("+", "N0", "0"), 1.0)])
