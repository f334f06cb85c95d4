from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raykd.data.answers import (
    AnswerError,
    answer_decimals,
    answers_match,
    apply_post_op,
    equation_reproduces_answer,
    expression_value,
    parse_answer,
    prediction_correct,
)
from raykd.data.problem import Problem


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12 (marbles)", 12.0),
        ("12  (pieces of candy)", 12.0),
        ("2.5 (hours)", 2.5),
        ("15 r8", 15.0),
        ("8 r2 (portfolios)", 8.0),
        ("((7)/(15))", 7 / 15),
        ("25%", 0.25),
        ("12.5%", 0.125),
        ("19((3)/(4))", 19.75),
        ("1(5/6)", 1 + 5 / 6),
        ("1,234", 1234.0),
        ("$1,234.50", 1234.5),
        ("-5", -5.0),
        ("0.5", 0.5),
        (72, 72.0),
        (3.5, 3.5),
    ],
)
def test_parse_answer(text: str | float, value: float) -> None:
    assert parse_answer(text) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize(
    "text", ["", "abc", "x=5", "5 apples and 3 pears", None, float("nan"), float("inf"), True, "1/0"]
)
def test_parse_answer_rejects(text: object) -> None:
    with pytest.raises(AnswerError):
        parse_answer(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "decimals"),
    [
        ("3.33", 2),
        ("12.0", 1),
        ("12", 0),
        ("12 (marbles)", 0),
        ("25%", 2),
        ("12.5%", 3),
        ("((7)/(15))", None),
        ("15 r8", None),
    ],
)
def test_answer_decimals(text: str, decimals: int | None) -> None:
    assert answer_decimals(text) == decimals


@pytest.mark.parametrize(
    ("pred", "gold", "gold_text", "expected"),
    [
        (10 / 3, 3.333, "3.333", True),  # rounded gold, compared at its precision
        (10 / 3, 3.33, None, True),
        (3.3349, 3.33, "3.33", True),
        (3.336, 3.33, "3.33", False),
        (0.6667 * 0.5, 0.3333, "0.3333", True),  # 4 decimals: rounding still applies
        (12.4, 12.0, "12", False),  # integer golds are never compared by rounding
        (12.4, 12.0, None, False),
        (12.0048, 12.0, "12.0", True),  # written with one decimal
        (12.0001, 12.0, "12", True),  # relative tolerance 1e-4
        (12.01, 12.0, "12", False),
        (100009.0, 100000.0, None, True),
        (7 / 15, 7 / 15, "((7)/(15))", True),
        (0.467, 7 / 15, "((7)/(15))", False),  # exact forms get no rounding slack
        (1 / 3, 0.33, "33%", True),
        (float("nan"), 1.0, None, False),
        (float("inf"), 1.0, None, False),
        (0.0, 0.0, "0", True),
        (1e-12, 0.0, "0", True),
    ],
)
def test_answers_match(pred: float, gold: float, gold_text: str | None, expected: bool) -> None:
    assert answers_match(pred, gold, gold_text=gold_text) is expected


@given(st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_answers_match_is_reflexive(x: float) -> None:
    assert answers_match(x, x)


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), st.integers(min_value=1, max_value=3))
def test_a_value_matches_its_rounding(x: float, decimals: int) -> None:
    gold_text = f"{x:.{decimals}f}"
    assert answers_match(x, float(gold_text), gold_text=gold_text)


@given(st.integers(min_value=-1000, max_value=1000), st.floats(min_value=0.5, max_value=100))
def test_integer_golds_reject_half_a_unit_away(gold: int, delta: float) -> None:
    assert not answers_match(gold + delta, float(gold), gold_text=str(gold))
    assert not answers_match(gold - delta, float(gold))


def test_apply_post_op() -> None:
    assert apply_post_op(15.5, None) == 15.5
    assert apply_post_op(15.5, "floor") == 15.0
    assert apply_post_op(13.1667, "ceil") == 14.0
    assert apply_post_op(13.0, "ceil") == 13.0
    with pytest.raises(ValueError, match="unknown post_op"):
        apply_post_op(1.0, "round")


def _problem(equation: tuple[str, ...], answer: float, answer_text: str, post_op: str | None) -> Problem:
    return Problem(
        id="p",
        text="248 pencils, 16 per box",
        numbers=(248.0, 16.0),
        number_spans=((0, 3), (12, 14)),
        equation=equation,
        answer=answer,
        complexity="simple",
        answer_text=answer_text,
        meta={"post_op": post_op},
    )


def test_floor_problems_compare_after_the_post_op() -> None:
    problem = _problem(("/", "N0", "N1"), 15.0, "15 (boxes)", "floor")
    assert expression_value(problem, problem.equation) == 15.0
    assert equation_reproduces_answer(problem)
    assert prediction_correct(problem, ["/", "N0", "N1"])
    assert not prediction_correct(problem, ["-", "N0", "N1"])
    ceil = _problem(("/", "N0", "N1"), 16.0, "16", "ceil")
    assert equation_reproduces_answer(ceil)
    exact = _problem(("/", "N0", "N1"), 15.0, "15", None)
    assert not equation_reproduces_answer(exact)  # 15.5 is not 15 without the post-op


def test_prediction_correct_is_false_for_malformed_predictions() -> None:
    problem = _problem(("+", "N0", "N1"), 264.0, "264", None)
    assert prediction_correct(problem, ["+", "N1", "N0"])
    assert not prediction_correct(problem, ["+", "N0"])
    assert not prediction_correct(problem, ["/", "N0", "0"])
    assert not prediction_correct(problem, ["N7"])
    assert not equation_reproduces_answer(_problem((), 264.0, "264", None))
    assert math.isfinite(expression_value(problem, ["*", "N0", "N1"]))
