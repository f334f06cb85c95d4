"""Replace the numbers of a gold equation by placeholders pointing into the problem text.

Each number literal of the equation, left to right, becomes `Nk` for a text number of the same
value (relative tolerance 1e-9): the first such number not used yet, else the first one. A
literal written as a percentage, fraction or mixed number ("80%", "(2/5)", "1(5/6)") that has no
equal in the text is replaced by the division it denotes ("80/100", "2/5", "1+5/6") and that is
masked in turn. Whatever still matches nothing stays a constant token ("1", "3.14").
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

from raykd.data.expressions import BinOp, Node, Num, Placeholder, literal_value
from raykd.data.problem import OPERATORS, Problem

_PLACEHOLDER = re.compile(r"N\d+")

CONSTANTS: tuple[str, ...] = (
    "0",
    "0.01",
    "0.1",
    "0.25",
    "0.5",
    "1",
    "2",
    "3",
    "4",
    "5",
    "7",
    "10",
    "12",
    "24",
    "60",
    "100",
    "1000",
    "3.14",
)
"""Constant tokens a decoder vocabulary should always offer (the `0` of unary minus, percent
factors, halves, dozens, units of time, pi); `constant_vocabulary` adds the ones a data set uses."""


def constant_vocabulary(problems: Iterable[Problem]) -> tuple[str, ...]:
    """`CONSTANTS` plus every other constant token the problems' equations use, by value."""
    used = {t for p in problems for t in p.equation if t not in OPERATORS and not _PLACEHOLDER.fullmatch(t)}
    return tuple(sorted(set(CONSTANTS) | used, key=float))


def _num(text: str) -> Num:
    return Num(float(text), text)


def literal_structure(literal: Num) -> Node | None:
    """The division a percentage / fraction / mixed-number literal denotes; None for plain numbers."""
    text = literal.text.replace(",", "")
    if text.endswith("%"):
        return BinOp("/", _num(text[:-1]), _num("100"))
    if "/" not in text:
        return None
    whole, _, fraction = text.rpartition("(")  # "1(5/6)" -> "1", "5/6)";  "(2/5)" -> "", "2/5)"
    if whole:  # the fraction part is tried as a number of its own first
        return BinOp("+", _num(whole), Num(literal_value(f"({fraction}"), f"({fraction}"))
    numerator, denominator = fraction.rstrip(")").split("/")
    return BinOp("/", _num(numerator), _num(denominator))


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def mask_numbers(node: Node, numbers: Sequence[float]) -> Node:
    """`node` with its number literals replaced by placeholders of `numbers` (see module doc)."""
    used: set[int] = set()

    def visit(n: Node) -> Node:
        if isinstance(n, BinOp):
            left = visit(n.left)
            return BinOp(n.op, left, visit(n.right))
        if not isinstance(n, Num):
            return n
        matches = [k for k, value in enumerate(numbers) if _same(value, n.value)]
        if matches:
            k = next((k for k in matches if k not in used), matches[0])
            used.add(k)
            return Placeholder(k)
        structure = literal_structure(n)
        return visit(structure) if structure is not None else n

    return visit(node)
