from __future__ import annotations

import pytest

from raykd.data.expressions import (
    ExpressionError,
    evaluate,
    parse_infix,
    to_infix,
    to_prefix,
)
from raykd.data.masking import mask_numbers
from raykd.data.equations import solve_equation


@pytest.mark.parametrize(
    ("equation", "infix", "value"),
    [
        ("x=56*9", "56 * 9", 504.0),
        ("X=(27.0*16.0)", "27 * 16", 432.0),
        ("25000.0-(1500.0*8.0)=x", "25000 - 1500 * 8", 13000.0),
        ("miles=4.0/30.0*48.0", "4 / 30 * 48", 6.4),
        ("X-6=52", "52 + 6", 58.0),
        ("X-7-4=5", "5 + 4 + 7", 16.0),
        ("7=3+x", "7 - 3", 4.0),
        ("200/x=5", "200 / 5", 40.0),
        ("x^2=49", "49 ^ (1 / 2)", 7.0),
        ("( 3.0 + 5.0 )", "3 + 5", 8.0),
    ],
)
def test_solve_isolates_the_unknown(equation: str, infix: str, value: float) -> None:
    tree = solve_equation(equation)
    assert to_infix(tree) == infix
    assert evaluate(tree) == pytest.approx(value)


@pytest.mark.parametrize(
    ("equation", "gold"),
    [
        ("(7.0*x)+4.0=(3.0*x)-20.0", -6.0),
        ("560.0/(60.0-x)=640.0/(60.0+x)", 4.0),
        ("(1.0/x)+(1.0/(x-6.0))=7.0*(1.0/x)", 7.2),
        ("(200.0/x)-(200.0/(10.0+x))=1.0", 40.0),
        ("(6.0+x)*(x-6.0)=189.0", -15.0),
        ("(6.0+x)*(x-6.0)=189.0", 15.0),
        ("(100.0/(60.0-x))+(100.0/(60.0+x))=12.0", 50.99019513592785),
    ],
)
def test_solve_polynomial_equations_picks_the_gold_root(equation: str, gold: float) -> None:
    tree = solve_equation(equation, choose=lambda v: abs(v - gold) < 1e-6)
    assert evaluate(tree) == pytest.approx(gold)


@pytest.mark.parametrize(
    ("equation", "message"),
    [
        ("x+y=3", "exactly one unknown"),
        ("3=3", "exactly one unknown"),
        ("x=1=2", "more than one '='"),
        ("x*x*x=8", "degree above 2"),
        ("2^x=8", "exponent"),
        ("x+1", "no '='"),
        ("x*x=-4", "no real solution"),
        ("x-x=3", "no unique solution"),
    ],
)
def test_solve_errors(equation: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        solve_equation(equation)


@pytest.mark.parametrize(
    ("equation", "numbers", "prefix"),
    [
        ("5+7", [5.0, 7.0], ("+", "N0", "N1")),
        ("7+5", [5.0, 7.0], ("+", "N1", "N0")),
        ("3*3", [3.0, 3.0], ("*", "N0", "N1")),  # equal values: first unused, in order
        ("3.14*2^2", [2.0], ("*", "3.14", "^", "N0", "N0")),  # all used: the first again
        ("8*(1+4)", [4.0, 8.0], ("*", "N1", "+", "1", "N0")),  # 1 is not in the text: constant
        ("280/(1/4)*(3/4)", [280.0, 0.25, 0.75], ("*", "/", "N0", "N1", "N2")),
        ("120/(1-6%)", [120.0, 0.06], ("/", "N0", "-", "1", "N1")),
        ("120/(1-6%)", [120.0, 6.0], ("/", "N0", "-", "1", "/", "N1", "100")),  # percent not in text
        ("1(1/4)+(1/3)", [0.25, 3.0], ("+", "+", "1", "N0", "/", "1", "N1")),  # fraction/mixed fall back
        ("5.0*2", [5.00000001, 2.0], ("*", "5", "N1")),  # tolerance is 1e-9 relative
        ("5.0*2", [5.000000000001, 2.0], ("*", "N0", "N1")),
    ],
)
def test_mask_numbers(equation: str, numbers: list[float], prefix: tuple[str, ...]) -> None:
    masked = mask_numbers(parse_infix(equation), numbers)
    assert to_prefix(masked) == prefix
    assert evaluate(masked, numbers) == pytest.approx(evaluate(parse_infix(equation)), rel=1e-9)


def test_constant_vocabulary_adds_the_data_sets_constants() -> None:
    from raykd.data.masking import CONSTANTS, constant_vocabulary
    from raykd.data.problem import Problem

    problem = Problem(
        id="p",
        text="5 apples",
        numbers=(5.0,),
        number_spans=((0, 1),),
        equation=("*", "N0", "+", "0.07", "-2"),
        answer=0.35,
        complexity="simple",
    )
    vocabulary = constant_vocabulary([problem])
    assert set(vocabulary) == set(CONSTANTS) | {"0.07", "-2"}
    assert vocabulary[0] == "-2" and vocabulary.index("0.07") < vocabulary.index("0.1")
    assert "N0" not in vocabulary and "*" not in vocabulary
