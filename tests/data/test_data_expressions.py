from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raykd.data.expressions import (
    BinOp,
    ExpressionError,
    Node,
    Num,
    Placeholder,
    complexity,
    evaluate,
    evaluate_prefix,
    from_prefix,
    is_well_formed_prefix,
    nesting_depth,
    parse_infix,
    to_infix,
    to_prefix,
    tokenize,
)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        (
            "x=120/[(1-6%)-(1-30%)]".split("=")[1],
            ["120", "/", "(", "(", "1", "-", "6%", ")", "-", "(", "1", "-", "30%", ")", ")"],
        ),
        ("280/(1/4)*(3/4)", ["280", "/", "(1/4)", "*", "(3/4)"]),
        ("1(5/6)+2**3", ["1(5/6)", "+", "2", "^", "3"]),
        ("( 3.0 + 5.0 ) × 2 ÷ 1,000", ["(", "3.0", "+", "5.0", ")", "*", "2", "/", "1,000"]),
        ("N0 + N12 * .5", ["N0", "+", "N12", "*", ".5"]),
    ],
)
def test_tokenize(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


@pytest.mark.parametrize(
    ("text", "prefix", "value"),
    [
        ("1+2*3", ("+", "1", "*", "2", "3"), 7.0),
        ("(6+4)*9", ("*", "+", "6", "4", "9"), 90.0),
        ("[6+4]*9", ("*", "+", "6", "4", "9"), 90.0),
        ("10-4-3", ("-", "-", "10", "4", "3"), 3.0),
        ("24/4/2", ("/", "/", "24", "4", "2"), 3.0),
        ("2^3^2", ("^", "2", "^", "3", "2"), 512.0),
        ("3.14*2^2", ("*", "3.14", "^", "2", "2"), 12.56),
        ("-(3+4)", ("-", "0", "+", "3", "4"), -7.0),
        ("1.477/-7.0", ("/", "1.477", "-", "0", "7"), 1.477 / -7),
        ("-2^2", ("-", "0", "^", "2", "2"), -4.0),
        ("1-6%", ("-", "1", "0.06"), 0.94),
        ("(2/5)+1(1/2)", ("+", "0.4", "1.5"), 1.9),
        ("+5", ("5",), 5.0),
        ("1,000*2", ("*", "1000", "2"), 2000.0),
    ],
)
def test_parse_to_prefix_and_value(text: str, prefix: tuple[str, ...], value: float) -> None:
    tree = parse_infix(text)
    assert to_prefix(tree) == prefix
    assert math.isclose(evaluate(tree), value, rel_tol=1e-12)
    assert math.isclose(evaluate_prefix(prefix, []), value, rel_tol=1e-12)


def test_missing_parenthesis_is_named() -> None:
    with pytest.raises(ExpressionError, match=r"missing '\)'"):
        parse_infix("(1+2")


@pytest.mark.parametrize("text", ["1+", "(1+2", "1 2", "x=80千米/小时", "", "()", "2(3+4)", "1+*2", "3)"])
def test_parse_errors(text: str) -> None:
    with pytest.raises(ExpressionError):
        parse_infix(text)


def test_evaluate_prefix_with_placeholders_and_constants() -> None:
    assert evaluate_prefix(["/", "-", "N0", "N1", "N2"], [22.0, 14.0, 4.0]) == 2.0
    assert evaluate_prefix(["*", "3.14", "^", "N0", "2"], [2.0]) == pytest.approx(12.56)
    assert evaluate_prefix(["-", "N0", "-5"], [1.0]) == 6.0
    assert evaluate_prefix(["N1"], [1.0, 7.5]) == 7.5


@pytest.mark.parametrize(
    ("tokens", "numbers", "message"),
    [
        (["/", "N0", "-", "N1", "N1"], [1.0, 2.0], "division by zero"),
        (["/", "N0", "0"], [1.0], "division by zero"),
        (["^", "0", "-1"], [], "division by zero"),
        (["+", "N0"], [1.0], "ends early"),
        (["+", "N0", "N1", "N1"], [1.0, 2.0], "extra tokens"),
        (["N3"], [1.0], "placeholder N3"),
        (["+", "x", "1"], [], "invalid token"),
        (["+", "nan", "1"], [], "invalid token"),
        (["+", "inf", "1"], [], "invalid token"),
        ([], [], "empty"),
        (["^", "10", "100"], [], "too large"),
        (["^", "2", "60"], [], "out of range"),
        (["*", "1e300", "10"], [], "invalid token"),
        (["*", "100000000", "100000000"], [], "out of range"),
        (["^", "-8", "0.5"], [], "negative base"),
    ],
)
def test_evaluate_prefix_errors(tokens: list[str], numbers: list[float], message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        evaluate_prefix(tokens, numbers)


def test_long_and_deep_expressions_fail_cleanly() -> None:
    assert evaluate_prefix(["+"] * 255 + ["1"] * 256, []) == 256.0  # depth 255 still evaluates
    with pytest.raises(ExpressionError, match="too long"):
        evaluate_prefix(["+"] * 5000 + ["1"] * 5001, [])
    with pytest.raises(ExpressionError, match="too long"):
        parse_infix("+".join(["1"] * 600))
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse_infix("(" * 250 + "1" + ")" * 250)
    assert evaluate(parse_infix("(" * 100 + "1" + ")" * 100)) == 1.0


@pytest.mark.parametrize(
    ("tokens", "ok"),
    [
        (["N0"], True),
        (["+", "N0", "1"], True),
        (["*", "-", "N0", "N1", "3.14"], True),
        (["+", "N0"], False),
        (["N0", "N1"], False),
        (["+", "(", "N0", "N1"], False),
        ([], False),
        (["-5"], True),
        (["--5"], False),
    ],
)
def test_is_well_formed_prefix(tokens: list[str], ok: bool) -> None:
    assert is_well_formed_prefix(tokens) is ok


@pytest.mark.parametrize(
    ("infix", "depth", "level"),
    [
        ("N0", 0, "simple"),
        ("N0 + N1", 0, "simple"),
        ("N0 - N1 * N2", 0, "simple"),
        ("N0 + (N1 - N2)", 0, "simple"),  # a+(b-c) = a+b-c: the parentheses are redundant
        ("(N0 + N1) * N2", 1, "medium"),
        ("N0 - (N1 - N2)", 1, "medium"),
        ("N0 / (N1 * N2)", 1, "medium"),
        ("N0 + N1 + N2 + N3", 0, "medium"),
        ("N0 * N1 + N2 * N3 - N4", 0, "medium"),
        ("(N0 + N1) * (N2 - N3)", 1, "medium"),
        ("N0 + N1 + N2 + N3 + N4 + N5", 0, "complex"),
        ("((N0 + N1) * N2 - N3) / N4", 2, "complex"),
        ("N0 * (N1 - (N2 + N3))", 2, "complex"),
        ("(N0 ^ N1) ^ N2", 1, "medium"),
        ("N0 ^ N1 ^ N2", 0, "simple"),
    ],
)
def test_nesting_and_complexity(infix: str, depth: int, level: str) -> None:
    tree = parse_infix(infix)
    assert nesting_depth(tree) == depth
    assert complexity(to_prefix(tree)) == level


def test_to_infix_uses_minimal_parentheses() -> None:
    assert to_infix(parse_infix("((N0+N1))*(N2)")) == "(N0 + N1) * N2"
    assert to_infix(parse_infix("N0-(N1+N2)")) == "N0 - (N1 + N2)"
    assert to_infix(parse_infix("(N0*N1)+N2")) == "N0 * N1 + N2"


# ---- property-based: random trees survive infix and prefix round trips ---------------------------

leaves = st.one_of(
    st.integers(min_value=1, max_value=9).map(lambda v: Num(float(v), str(v))),
    st.integers(min_value=0, max_value=3).map(Placeholder),
)


def _grow(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    arithmetic = st.builds(BinOp, st.sampled_from(["+", "-", "*", "/"]), children, children)
    power = st.builds(
        BinOp, st.just("^"), children, st.integers(min_value=0, max_value=2).map(lambda v: Num(float(v), str(v)))
    )
    return st.one_of(arithmetic, power)


trees = st.recursive(leaves, _grow, max_leaves=8)
NUMBERS = [2.0, 3.0, 5.0, 7.0]


def _value(tree: Node) -> float | None:
    try:
        return evaluate(tree, NUMBERS)
    except ExpressionError:
        return None


@settings(max_examples=300, deadline=None)
@given(trees)
def test_infix_round_trip_preserves_value(tree: Node) -> None:
    direct = _value(tree)
    reparsed = _value(parse_infix(to_infix(tree)))
    if direct is None:
        assert reparsed is None
    else:
        assert reparsed is not None and math.isclose(reparsed, direct, rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=300, deadline=None)
@given(trees)
def test_prefix_round_trip_is_exact(tree: Node) -> None:
    tokens = to_prefix(tree)
    assert is_well_formed_prefix(tokens)
    assert from_prefix(tokens) == tree
    direct = _value(tree)
    if direct is not None:
        assert evaluate_prefix(tokens, NUMBERS) == direct


@settings(max_examples=300, deadline=None)
@given(trees)
def test_complexity_follows_the_definition(tree: Node) -> None:
    tokens = to_prefix(tree)
    ops = sum(t in "+-*/^" for t in tokens)
    depth = nesting_depth(tree)
    level = complexity(tokens)
    if ops >= 5 or depth >= 2:
        assert level == "complex"
    elif ops >= 3 or depth == 1:
        assert level == "medium"
    else:
        assert level == "simple" and ops <= 2 and depth == 0


@settings(max_examples=300, deadline=None)
@given(trees)
def test_minimal_infix_is_a_fixed_point(tree: Node) -> None:
    text = to_infix(tree)
    reparsed = parse_infix(text)
    assert to_infix(reparsed) == text
    assert nesting_depth(reparsed) == nesting_depth(tree)


@given(st.lists(st.sampled_from(["+", "-", "*", "/", "^", "N0", "N1", "1", "3.14", "(", "x"]), max_size=12))
def test_well_formedness_agrees_with_evaluation(tokens: list[str]) -> None:
    if is_well_formed_prefix(tokens):
        try:
            evaluate_prefix(tokens, [2.0, 3.0])
        except ExpressionError as exc:
            assert "division by zero" in str(exc) or "range" in str(exc) or "power" in str(exc)
    else:
        with pytest.raises(ExpressionError):
            evaluate_prefix(tokens, [2.0, 3.0])
