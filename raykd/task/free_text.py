"""Solve one free-text problem with a trained solver."""

from __future__ import annotations

import math
import re
from typing import Any

from raykd.data import (
    ExpressionError,
    expression_value,
    extract_numbers,
    from_prefix,
    to_infix,
)
from raykd.data.problem import Problem
from raykd.task.model import SolverModel
from raykd.task.mwp import MWPTask

_CJK = re.compile(r"[\u4e00-\u9fff]")


def problem_from_text(text: str) -> Problem:
    """A Problem with the text's numbers and no gold (for solving, not scoring)."""
    mentions = extract_numbers(text, language="zh" if _CJK.search(text) else "en")
    return Problem(
        id="input", text=text, numbers=tuple(m.value for m in mentions), number_spans=tuple(m.span for m in mentions),
        equation=(), answer=math.nan, complexity="simple",
    )


def solve_text(model: SolverModel, tokenizer: Any, text: str, *, beam_size: int = 1) -> dict[str, Any]:
    """The solver's expression for `text`, as prefix tokens and infix text, and its value."""
    problem = problem_from_text(text)
    task = MWPTask(tokenizer, model.vocab, {"input": [problem]}, beam_size=beam_size)
    tokens = task.predict(model, "input")[0].tokens
    try:
        value: float | None = expression_value(problem, tokens)
        infix = to_infix(from_prefix(tokens))
    except ExpressionError:
        value, infix = None, " ".join(tokens)
    return {"numbers": list(problem.numbers), "prefix": tokens, "infix": infix, "answer": value}
