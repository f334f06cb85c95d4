"""The correctness filter: a generated trace is kept only if its answer line matches the gold.

Teachers' generations (source (a)) and every pruned trace go through the same acceptance. The
answer is read from the first `Answer:` line (`format.parse_trace`, after `cut_at_answer`), by
raykd's answer parser, then the problem's post-operation is applied (ASDiv-A floor/ceil problems)
exactly as the causal-LM task does for a generated expression, and compared with `answers_match`
at the gold's written precision. Rejections are counted by reason.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from raykd.data.answers import answers_match, apply_post_op
from raykd.data.problem import Problem
from raykd.traces.format import Trace, answer_value, cut_at_answer, parse_trace

REASONS: tuple[str, ...] = ("no-answer-line", "unparseable-answer", "wrong-answer")


_SPLIT_DIGITS = re.compile(r"(?<=[\d.,])\s+(?=[\d.,])")


def trace_value(trace: Trace, problem: Problem) -> float | None:
    """The trace's answer as a number, the problem's post-operation applied; None if unparseable.
    Digits a tokenizer decoded apart ("1 2") are joined. The causal-LM task scores its generations with this."""
    value = answer_value(_SPLIT_DIGITS.sub("", trace.answer))
    if value is None:
        return None
    try:
        return apply_post_op(value, problem.meta.get("post_op"))
    except (ValueError, OverflowError):
        return None


def answer_verdict(trace: Trace | None, problem: Problem) -> str | None:
    """None when `trace` answers `problem` correctly, else the rejection reason (see `REASONS`)."""
    if trace is None:
        return "no-answer-line"
    value = trace_value(trace, problem)
    if value is None:
        return "unparseable-answer"
    if not answers_match(value, problem.answer, gold_text=problem.answer_text or None):
        return "wrong-answer"
    return None


def read_generation(text: str) -> Trace | None:
    """The trace a model generated: its text up to the first answer line, parsed."""
    return parse_trace(cut_at_answer(text))


@dataclass
class FilterOutcome:
    """Which generations were kept (their indices and traces) and why the others were not."""

    kept: list[tuple[int, Trace]] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return len(self.kept) + sum(self.rejected.values())

    @property
    def keep_rate(self) -> float:
        return len(self.kept) / self.total if self.total else 0.0


def filter_traces(texts: Sequence[str], problems: Sequence[Problem]) -> FilterOutcome:
    """Keep the generations (one per problem, in order) whose answer matches the gold."""
    if len(texts) != len(problems):
        raise ValueError(f"{len(texts)} generations for {len(problems)} problems")
    outcome = FilterOutcome()
    for i, (text, problem) in enumerate(zip(texts, problems)):
        trace = read_generation(text)
        reason = answer_verdict(trace, problem)
        if reason is None:
            assert trace is not None
            outcome.kept.append((i, trace))
        else:
            outcome.rejected[reason] += 1
    return outcome
