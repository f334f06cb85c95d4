"""Gold answers: reading them as written, and deciding whether a computed value matches one.

Matching (docs/data.md): a prediction matches when it is within relative tolerance 1e-4 of the
gold, or, when the gold is written with d >= 1 decimals, when it rounds to the gold at d decimals
(rounded golds: 3.333 for 10/3, 0.3333 for 0.6667*0.5, MAWPS's 12.0 for 12.0048). Golds
written as integers are never compared by rounding: 12.4 does not match "12".

Remainder convention "asdiv": ASDiv Floor-/Ceil-Division golds are the value the Answer field
states (the quotient; the quotient + 1). Such problems carry `meta["post_op"]` = "floor" /
"ceil", applied to the value of any expression (gold or predicted) before it is compared, and
`meta["exact_answer"]`, the unrounded value of the gold equation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from raykd.data.expressions import (
    ExpressionError,
    evaluate,
    evaluate_prefix,
    parse_infix,
)
from raykd.data.problem import Problem

RELATIVE_TOLERANCE = 1e-4

POST_OPS = {"floor": math.floor, "ceil": math.ceil}


class AnswerError(ValueError):
    """An answer string that is not a number in any of the known forms."""


_UNIT = re.compile(r"^(?P<value>.*?)\s*\((?P<unit>[^()]*[^\W\d][^()]*)\)$")  # "12 (marbles)"
_REMAINDER = re.compile(r"^(?P<quotient>-?\d+(?:\.\d+)?)\s*r\s*\d+$")  # "15 r8"
_MIXED = re.compile(r"^(?P<whole>\d+)\((?P<fraction>\(\d+\)/\(\d+\)|\d+/\d+)\)$")  # "19((3)/(4))"
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_PLAIN = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)$")


def _strip(text: str) -> str:
    text = text.strip()
    if m := _UNIT.match(text):
        text = m.group("value")
    return _THOUSANDS.sub("", text.replace("$", "")).strip()


def parse_answer(text: str | float | int) -> float:
    """Value of an answer as data sets write it: 12, "12 (marbles)", "15 r8" (-> 15), "1,234",
    "25%" (-> 0.25), "((7)/(15))", "19((3)/(4))" (-> 19.75)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if not math.isfinite(text):
            raise AnswerError(f"answer is not a finite number: {text!r}")
        return float(text)
    if not isinstance(text, str):
        raise AnswerError(f"answer is not a number or a string: {text!r}")
    body = _strip(text)
    if m := _REMAINDER.match(body):
        return float(m.group("quotient"))
    if m := _MIXED.match(body):
        return float(m.group("whole")) + parse_answer(m.group("fraction"))
    try:
        value = evaluate(parse_infix(body))
    except ExpressionError as exc:
        raise AnswerError(f"unparseable answer {text!r}") from exc
    return value


def answer_decimals(text: str | float | int) -> int | None:
    """Decimal places a gold is written with ("3.33" -> 2, "12.0" -> 1, "12" -> 0, "12%" -> 2);
    None when the form is exact by construction (fractions, mixed numbers, remainders)."""
    body = _strip(str(text) if not isinstance(text, str) else text)
    scale = 0
    if body.endswith("%"):
        body, scale = body[:-1].strip(), 2
    if not _PLAIN.match(body):
        return None
    try:
        exponent = Decimal(body).as_tuple().exponent
    except InvalidOperation:
        return None
    return max(0, -int(exponent)) + scale if isinstance(exponent, int) else None


def answers_match(pred: float, gold: float, *, gold_text: str | None = None) -> bool:
    """Whether `pred` matches `gold` (see the module doc). The gold's precision is read off
    `gold_text` as written ("12.0" has one decimal), else off `repr(gold)`, where an integral
    float counts as an integer. Non-finite values never match."""
    if not (math.isfinite(pred) and math.isfinite(gold)):
        return False
    if math.isclose(pred, gold, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-9):
        return True
    if gold_text is None:
        gold_text = str(int(gold)) if gold == int(gold) else repr(gold)
    decimals = answer_decimals(gold_text)
    if not decimals:  # integer golds, and exact forms such as fractions
        return False
    half_unit = 0.5 * 10.0**-decimals
    return abs(pred - gold) <= half_unit * (1 + 1e-9)


def apply_post_op(value: float, post_op: str | None) -> float:
    """`value` after the problem's post-operation (None, "floor", "ceil")."""
    if post_op is None:
        return value
    if post_op not in POST_OPS:
        raise ValueError(f"unknown post_op {post_op!r}; expected one of {sorted(POST_OPS)} or None")
    return float(POST_OPS[post_op](value))


def expression_value(problem: Problem, tokens: Sequence[str]) -> float:
    """Value of a prefix expression for `problem`, post-operation applied; raises `ExpressionError`."""
    value = evaluate_prefix(tokens, problem.numbers)
    return apply_post_op(value, problem.meta.get("post_op"))


def prediction_correct(problem: Problem, tokens: Sequence[str]) -> bool:
    """Whether a predicted prefix expression answers `problem` (malformed expressions do not)."""
    try:
        value = expression_value(problem, tokens)
    except ExpressionError:
        return False
    return answers_match(value, problem.answer, gold_text=problem.answer_text or None)


def equation_reproduces_answer(problem: Problem) -> bool:
    """Whether the gold equation evaluates to the gold answer (False for answer-only problems)."""
    return bool(problem.equation) and prediction_correct(problem, problem.equation)
