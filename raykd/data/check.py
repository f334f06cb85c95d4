"""Summarise a load: what was loaded, what was skipped and why, and how consistent the golds are."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any

from raykd.data.problem import COMPLEXITY_LEVELS
from raykd.data.readers import LoadResult


def reason_kind(reason: str) -> str:
    """The part of a skip reason before its details ("missing field: 'Formula'" -> "missing field")."""
    return reason.split(":", 1)[0]


def check_report(result: LoadResult) -> dict[str, Any]:
    """Counts and per-row details of a `LoadResult`, as plain JSON-able values.

    `consistent` is the fraction of loaded problems *with an equation* whose gold equation
    reproduces the gold answer (`with_equation` says how many that is; answer-only problems,
    such as GSM8K rows without usable annotations, are counted in `answer_only`); None if no
    problem has an equation. `constants_only` counts equations that use no number of the text
    (a hint that number extraction missed something). `post_ops` counts the problems whose gold is
    the floor / ceiling of their equation (ASDiv remainder problems, convention "asdiv").
    """
    with_equation = sum(1 for p in result.problems if p.equation)
    constants_only = sum(1 for p in result.problems if p.equation and not any(t.startswith("N") for t in p.equation))
    consistent = with_equation - len(result.inconsistent)
    rows = [{"kind": "skipped", **asdict(row)} for row in result.skipped]
    rows += [{"kind": "inconsistent", **asdict(row)} for row in result.inconsistent]
    by_complexity = Counter(p.complexity for p in result.problems)
    return {
        "source": result.source,
        "loaded": len(result.problems),
        "skipped": len(result.skipped),
        "with_equation": with_equation,
        "answer_only": len(result.problems) - with_equation,
        "inconsistent": len(result.inconsistent),
        "constants_only": constants_only,
        "consistent": consistent / with_equation if with_equation else None,
        "skipped_reasons": dict(Counter(reason_kind(row.reason) for row in result.skipped).most_common()),
        "by_complexity": {level: by_complexity.get(level, 0) for level in COMPLEXITY_LEVELS},
        "post_ops": dict(Counter(p.meta["post_op"] for p in result.problems if p.meta.get("post_op"))),
        "by_source": dict(Counter(p.source for p in result.problems)),
        "rows": rows,
    }
