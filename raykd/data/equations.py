"""Turn a gold equation with an unknown into an expression for the unknown.

Most data sets write `x=EXPR`; MAWPS also writes `EXPR=x`, `miles=EXPR`, `X-7-4=5` and a few
rational equations (`(200/x)-(200/(10+x))=1`). The expression keeps the equation's own number
literals (so they can still be masked to text numbers):

- the unknown occurs once: undo the operations around it (`X-7-4=5` -> `5+4+7`);
- otherwise: clear denominators into a polynomial `A(x) = B(x)` whose coefficients are
  expressions, and solve degree 1 (`x = (b0-a0)/(a1-b1)`) or degree 2 (the quadratic formula
  with `^0.5`); of two roots the one matching the gold answer is kept.
"""

from __future__ import annotations

from collections.abc import Callable

from raykd.data.expressions import (
    BinOp,
    ExpressionError,
    Node,
    Num,
    Unknown,
    evaluate,
    parse_infix,
)

Poly = list["Node | None"]
"""Coefficients by power of the unknown; None is an exact zero."""

_ONE = Num(1.0, "1")
_ZERO = Num(0.0, "0")


def _node(coefficient: Node | None) -> Node:
    return _ZERO if coefficient is None else coefficient


def _unknowns(node: Node) -> set[str]:
    if isinstance(node, BinOp):
        return _unknowns(node.left) | _unknowns(node.right)
    return {node.name} if isinstance(node, Unknown) else set()


def _count(node: Node, name: str) -> int:
    if isinstance(node, BinOp):
        return _count(node.left, name) + _count(node.right, name)
    return int(isinstance(node, Unknown) and node.name == name)


def _isolate(side: Node, other: Node, name: str) -> Node:
    """Solve `side = other` where `side` holds the unknown exactly once."""
    while isinstance(side, BinOp):
        op, left, right = side.op, side.left, side.right
        in_left = _count(left, name) == 1
        if op == "+":
            side, other = (left, BinOp("-", other, right)) if in_left else (right, BinOp("-", other, left))
        elif op == "-":
            side, other = (left, BinOp("+", other, right)) if in_left else (right, BinOp("-", left, other))
        elif op == "*":
            side, other = (left, BinOp("/", other, right)) if in_left else (right, BinOp("/", other, left))
        elif op == "/":
            side, other = (left, BinOp("*", other, right)) if in_left else (right, BinOp("/", left, other))
        elif in_left:  # a^b = r  ->  a = r^(1/b)
            side, other = left, BinOp("^", other, BinOp("/", _ONE, right))
        else:
            raise ExpressionError("cannot solve for an unknown in an exponent")
    return other


def _is_zero(node: Node | None) -> bool:
    return node is None or abs(evaluate(node)) < 1e-12


def _combine(op: str, a: Node | None, b: Node | None) -> Node | None:
    """a op b for op in + - *, where None is zero and the literal 1 is the unit."""
    if op == "*":
        if a is None or b is None:
            return None
        return b if a == _ONE else a if b == _ONE else BinOp("*", a, b)
    if b is None:
        return a
    if a is None:
        return b if op == "+" else BinOp("-", _ZERO, b)
    return BinOp(op, a, b)


def _poly_add(p: Poly, q: Poly, op: str = "+") -> Poly:
    size = max(len(p), len(q))
    p, q = p + [None] * (size - len(p)), q + [None] * (size - len(q))
    return [_combine(op, a, b) for a, b in zip(p, q, strict=True)]


def _poly_mul(p: Poly, q: Poly) -> Poly:
    out: Poly = [None] * (len(p) + len(q) - 1)
    for i, a in enumerate(p):
        for j, b in enumerate(q):
            out[i + j] = _combine("+", out[i + j], _combine("*", a, b))
    return out


def _trim(p: Poly) -> Poly:
    """Drop coefficients that are zero in value (such as `200-200`) so degrees are true degrees."""
    return [None if _is_zero(c) else c for c in p]


def _rational(node: Node, name: str) -> tuple[Poly, Poly]:
    """`node` as numerator / denominator polynomials in the unknown."""
    if isinstance(node, Unknown):
        return [None, _ONE], [_ONE]
    if not isinstance(node, BinOp):
        return [node], [_ONE]
    (n1, d1), (n2, d2) = _rational(node.left, name), _rational(node.right, name)
    if node.op in ("+", "-"):
        if d1 == d2:
            return _trim(_poly_add(n1, n2, node.op)), d1
        return _trim(_poly_add(_poly_mul(n1, d2), _poly_mul(n2, d1), node.op)), _trim(_poly_mul(d1, d2))
    if node.op == "*":
        return _trim(_poly_mul(n1, n2)), _trim(_poly_mul(d1, d2))
    if node.op == "/":
        return _trim(_poly_mul(n1, d2)), _trim(_poly_mul(d1, n2))
    raise ExpressionError("cannot solve an equation with the unknown under '^'")


def _polynomial_roots(lhs: Node, rhs: Node, name: str) -> list[Node]:
    (n1, d1), (n2, d2) = _rational(lhs, name), _rational(rhs, name)
    a, b = _trim(_poly_mul(n1, d2)), _trim(_poly_mul(n2, d1))  # A(x) = B(x)
    size = max(len(a), len(b), 3)
    a, b = a + [None] * (size - len(a)), b + [None] * (size - len(b))
    if any(not _is_zero(_combine("-", a[k], b[k])) for k in range(3, size)):
        raise ExpressionError("equation of degree above 2")
    c0, c1, c2 = (_combine("-", a[k], b[k]) for k in range(3))  # C(x) = A(x) - B(x) = 0
    minus_c1 = _node(_combine("-", b[1], a[1]))
    if _is_zero(c2):
        if _is_zero(c1):
            raise ExpressionError("equation has no unique solution")
        return [BinOp("/", _node(_combine("-", b[0], a[0])), _node(c1))]
    if _is_zero(c0):  # x (c2 x + c1) = 0
        return [BinOp("/", minus_c1, _node(c2)), _ZERO]
    if _is_zero(c1):  # c2 x^2 = -c0
        root = BinOp("^", BinOp("/", _node(_combine("-", b[0], a[0])), _node(c2)), Num(0.5, "0.5"))
        return [root, BinOp("-", _ZERO, root)]
    square = BinOp("^", minus_c1, Num(2.0, "2"))
    four_ac = BinOp("*", BinOp("*", Num(4.0, "4"), _node(c2)), _node(c0))
    root = BinOp("^", BinOp("-", square, four_ac), Num(0.5, "0.5"))
    two_a = BinOp("*", Num(2.0, "2"), _node(c2))
    return [BinOp("/", BinOp(sign, minus_c1, root), two_a) for sign in ("+", "-")]


def solve_equation(equation: str, *, choose: Callable[[float], bool] | None = None) -> Node:
    """Expression for the unknown of `equation` ("x=..", "..=x", "X-6=52", or no "=" at all);
    `choose(value)` picks among several roots (default: the first that evaluates)."""
    sides = equation.split("=")
    if len(sides) > 2:
        raise ExpressionError(f"more than one '=' in {equation!r}")
    trees = [parse_infix(side) for side in sides]
    if len(trees) == 1:
        if _unknowns(trees[0]):
            raise ExpressionError(f"expression has an unknown but no '=': {equation!r}")
        return trees[0]
    lhs, rhs = trees
    names = _unknowns(lhs) | _unknowns(rhs)
    if len(names) != 1:
        raise ExpressionError(f"equation must have exactly one unknown, found {sorted(names) or 'none'}")
    (name,) = names
    if _count(lhs, name) + _count(rhs, name) == 1:
        return _isolate(lhs, rhs, name) if _count(lhs, name) else _isolate(rhs, lhs, name)
    roots = []
    for root in _polynomial_roots(lhs, rhs, name):
        try:
            roots.append((root, evaluate(root)))
        except ExpressionError:
            continue
    if not roots:
        raise ExpressionError(f"equation has no real solution: {equation!r}")
    return next((root for root, value in roots if choose is not None and choose(value)), roots[0][0])
