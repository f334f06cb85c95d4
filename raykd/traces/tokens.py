"""Trace length in tokens, counted exactly as the tokenizer counts them.

DRP's gain is tokens per answer, so the count must be the model's own: the tokenizer's ids for
the text, without the special tokens it would add around a sequence (BOS, [CLS]/[SEP]), which are
no part of what a model writes. Summaries give the mean and percentiles over a set of traces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from raykd.traces.format import Trace

PERCENTILES: tuple[int, ...] = (10, 50, 90, 95, 99)


def count_tokens(tokenizer: Any, text: str | Trace) -> int:
    """Tokens of `text` (a trace is rendered first), special tokens not counted."""
    if isinstance(text, Trace):
        text = text.render()
    return len(tokenizer(text, add_special_tokens=False).input_ids)


@dataclass(frozen=True)
class TokenSummary:
    """Token counts of a set of traces: n, mean, min, max, total and the `PERCENTILES`."""

    n: int
    mean: float
    minimum: int
    maximum: int
    total: int
    percentiles: dict[int, float]

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean, "min": self.minimum, "max": self.maximum, "total": self.total,
                **{f"p{q}": v for q, v in self.percentiles.items()}}


def summarize_counts(counts: Sequence[int]) -> TokenSummary:
    """The summary of given token counts (`ValueError` on an empty list: no mean to report)."""
    if not counts:
        raise ValueError("no traces to summarise")
    array = np.asarray(counts, dtype=float)
    return TokenSummary(
        n=len(counts), mean=float(array.mean()), minimum=int(array.min()), maximum=int(array.max()),
        total=int(array.sum()), percentiles={q: float(np.percentile(array, q)) for q in PERCENTILES},
    )


def token_summary(tokenizer: Any, traces: Sequence[str | Trace]) -> TokenSummary:
    """Token counts of `traces` by `tokenizer`, summarised."""
    return summarize_counts([count_tokens(tokenizer, t) for t in traces])
