"""The expression language: infix parsing, prefix form, safe evaluation, complexity.

Data is never `eval`-ed: infix text goes through `tokenize` and a recursive-descent parser into
a tree of `Num` / `Placeholder` / `Unknown` / `BinOp` nodes. Prefix token sequences (what models
read and write) hold operators `+ - * / ^`, placeholders `N0`, `N1`, ... and constant tokens
(canonical decimals such as `1`, `3.14`, `-5`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from raykd.data.numbers import format_number
from raykd.data.problem import OPERATORS


class ExpressionError(ValueError):
    """An expression that cannot be tokenized, parsed or evaluated."""


@dataclass(frozen=True)
class Num:
    """A number literal; `text` is how the equation wrote it ("80%", "(1/4)", "1(5/6)", "3.0")."""

    value: float
    text: str


@dataclass(frozen=True)
class Placeholder:
    """`Nk`: the k-th number of the problem text."""

    index: int


@dataclass(frozen=True)
class Unknown:
    """The unknown of an equation (`x`, `X`, `miles`): only before the equation is solved."""

    name: str


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Node
    right: Node


Node = Num | Placeholder | Unknown | BinOp

MAX_MAGNITUDE = 1e15
"""Largest intermediate value the evaluator accepts; beyond it an expression is not a word problem."""
MAX_TOKENS = 512
MAX_NESTING = 200  # parentheses / unary signs deep: an explicit bound, not the interpreter's recursion limit
"""Longest expression accepted, in tokens (infix or prefix): keeps every recursion shallow."""

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "^": 3}
_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<mixed>\d+\(\d+/\d+\))"  # Math23k mixed number 1(5/6)
    r"|(?P<frac>\(\d+(?:\.\d+)?/\d+(?:\.\d+)?\))"  # fraction literal (2/5)
    r"|(?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?%?|\.\d+%?)"
    r"|(?P<name>[A-Za-z_][A-Za-z_0-9]*)"
    r"|(?P<op>\*\*|[-+*/^()\[\]])"
    r")"
)
_PLACEHOLDER = re.compile(r"N(\d+)")
_CONSTANT = re.compile(r"-?\d+(?:\.\d+)?")
_TRANSLATE = str.maketrans({"×": "*", "÷": "/", "（": "(", "）": ")", "％": "%"})


def literal_value(text: str) -> float:
    """Value of a number literal as the tokenizer emits it: "80%", "(1/4)", "1(5/6)", "1,200"."""
    text = text.replace(",", "")
    if text.endswith("%"):
        return float(text[:-1]) / 100
    if text.startswith("("):
        numerator, denominator = text[1:-1].split("/")
        if float(denominator) == 0:
            raise ExpressionError(f"division by zero in literal {text}")
        return float(numerator) / float(denominator)
    if text.endswith(")"):
        whole, fraction = text[:-1].split("(")
        numerator, denominator = fraction.split("/")
        if float(denominator) == 0:
            raise ExpressionError(f"division by zero in literal {text}")
        return float(whole) + float(numerator) / float(denominator)
    return float(text)


def tokenize(text: str) -> list[str]:
    """Split infix text into tokens; `[ ]` become `( )`, `**` becomes `^`."""
    text = text.translate(_TRANSLATE)
    tokens: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos:].isspace():
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            bad = text[pos:].lstrip()[:1]
            raise ExpressionError(f"unexpected character {bad!r} at {pos} in {text!r}")
        token = m.group(m.lastgroup or "")
        tokens.append({"[": "(", "]": ")", "**": "^"}.get(token, token))
        pos = m.end()
    if not tokens:
        raise ExpressionError("empty expression")
    if len(tokens) > MAX_TOKENS:
        raise ExpressionError(f"expression too long ({len(tokens)} tokens, at most {MAX_TOKENS})")
    return tokens


class _Parser:
    """expr := term (('+'|'-') term)* ; term := unary (('*'|'/') unary)* ;
    unary := ('-'|'+') unary | power ; power := atom ('^' unary)? ; atom := literal | name | '(' expr ')'.
    Unary minus `-e` becomes `0 - e` (the language has binary operators only)."""

    def __init__(self, tokens: list[str], source: str) -> None:
        self.tokens = tokens
        self.pos = 0
        self.source = source
        self.depth = 0

    def fail(self, message: str) -> ExpressionError:
        return ExpressionError(f"{message} in {self.source!r}")

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise self.fail("unexpected end of expression")
        self.pos += 1
        return token

    def parse(self) -> Node:
        node = self.expr()
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()!r}")
        return node

    def expr(self) -> Node:
        node = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            node = BinOp(op, node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.peek() in ("*", "/"):
            op = self.take()
            node = BinOp(op, node, self.unary())
        return node

    def unary(self) -> Node:
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                raise ExpressionError(f"expression nested too deeply: {self.source[:40]!r}...")
            return self._unary()
        finally:
            self.depth -= 1

    def _unary(self) -> Node:
        if self.peek() == "-":
            self.take()
            return BinOp("-", Num(0.0, "0"), self.unary())
        if self.peek() == "+":
            self.take()
            return self.unary()
        return self.power()

    def power(self) -> Node:
        node = self.atom()
        if self.peek() == "^":
            self.take()
            node = BinOp("^", node, self.unary())
        return node

    def atom(self) -> Node:
        token = self.take()
        if token == "(":
            node = self.expr()
            if self.peek() != ")":
                raise self.fail("missing ')'")
            self.take()
            return node
        if token[0].isdigit() or token[0] in ".(":
            return Num(literal_value(token), token)
        if m := _PLACEHOLDER.fullmatch(token):
            return Placeholder(int(m.group(1)))
        if token[0].isalpha() or token[0] == "_":
            return Unknown(token)
        raise self.fail(f"unexpected {token!r}")


def parse_infix(text: str) -> Node:
    """Parse an infix expression ("(3.0 + 5.0) * 2", "1-6%", "[N0+N1]/(2/5)") into a tree."""
    try:
        return _Parser(tokenize(text), text).parse()
    except RecursionError:
        raise ExpressionError(f"expression nested too deeply: {text[:40]!r}...") from None


def to_prefix(node: Node) -> tuple[str, ...]:
    """Prefix tokens of a tree; number literals become canonical constant tokens."""
    if isinstance(node, BinOp):
        return (node.op, *to_prefix(node.left), *to_prefix(node.right))
    if isinstance(node, Placeholder):
        return (f"N{node.index}",)
    if isinstance(node, Num):
        return (format_number(node.value),)
    raise ExpressionError(f"unknown {node.name!r} left in the expression")


def from_prefix(tokens: Sequence[str]) -> Node:
    """The tree of a prefix token sequence; `ExpressionError` if it is not exactly one expression."""

    def build(pos: int) -> tuple[Node, int]:
        if pos >= len(tokens):
            raise ExpressionError(f"prefix expression ends early: {' '.join(tokens)!r}")
        token = tokens[pos]
        if token in OPERATORS:
            left, pos = build(pos + 1)
            right, pos = build(pos)
            return BinOp(token, left, right), pos
        if m := _PLACEHOLDER.fullmatch(token):
            return Placeholder(int(m.group(1))), pos + 1
        if _CONSTANT.fullmatch(token):
            return Num(float(token), token), pos + 1
        raise ExpressionError(f"invalid token {token!r} in prefix expression")

    if not tokens:
        raise ExpressionError("empty prefix expression")
    if len(tokens) > MAX_TOKENS:
        raise ExpressionError(f"prefix expression too long ({len(tokens)} tokens, at most {MAX_TOKENS})")
    node, end = build(0)
    if end != len(tokens):
        raise ExpressionError(f"extra tokens after a complete expression: {' '.join(tokens[end:])!r}")
    return node


def is_well_formed_prefix(tokens: Sequence[str]) -> bool:
    """True if `tokens` is exactly one prefix expression over the language's tokens."""
    try:
        from_prefix(tokens)
    except ExpressionError:
        return False
    return True


def _apply(op: str, a: float, b: float) -> float:
    if op == "+":
        result = a + b
    elif op == "-":
        result = a - b
    elif op == "*":
        result = a * b
    elif op == "/":
        if b == 0:
            raise ExpressionError("division by zero")
        result = a / b
    else:
        if a == 0 and b < 0:
            raise ExpressionError("division by zero (0 to a negative power)")
        if a < 0 and b != int(b):
            raise ExpressionError(f"negative base {a} to the fractional power {b}")
        if abs(b) > 64 and abs(a) != 1 and a != 0:
            raise ExpressionError(f"power too large: {a} ^ {b}")
        try:
            result = math.pow(a, b)
        except OverflowError as exc:
            raise ExpressionError(f"overflow in {a} ^ {b}") from exc
    if not math.isfinite(result) or abs(result) > MAX_MAGNITUDE:
        raise ExpressionError(f"value out of range: {a} {op} {b}")
    return result


def evaluate(node: Node, numbers: Sequence[float] = ()) -> float:
    """Value of a tree; placeholders read `numbers`. Raises `ExpressionError`, never crashes."""
    if isinstance(node, BinOp):
        return _apply(node.op, evaluate(node.left, numbers), evaluate(node.right, numbers))
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Placeholder):
        if node.index >= len(numbers):
            raise ExpressionError(f"placeholder N{node.index} but the problem has {len(numbers)} numbers")
        return float(numbers[node.index])
    raise ExpressionError(f"cannot evaluate the unknown {node.name!r}")


def evaluate_prefix(tokens: Sequence[str], numbers: Sequence[float]) -> float:
    """Value of a prefix expression with placeholders `Nk` bound to `numbers[k]`."""
    return evaluate(from_prefix(tokens), numbers)


def _needs_parens(child: Node, parent: str, side: Literal["left", "right"]) -> bool:
    """Whether `child` must be parenthesised under `parent` in minimal infix form."""
    if not isinstance(child, BinOp):
        return False
    mine, theirs = _PRECEDENCE[child.op], _PRECEDENCE[parent]
    if mine != theirs:
        return mine < theirs
    if parent == "^":
        return side == "left"  # a^b^c is a^(b^c)
    return side == "right" and parent in ("-", "/")  # a-(b+c), a/(b*c); a+(b-c) = a+b-c


def to_infix(node: Node) -> str:
    """Infix text with the fewest parentheses (placeholders print as N0, literals canonically)."""
    if isinstance(node, Unknown):
        return node.name
    if not isinstance(node, BinOp):
        return to_prefix(node)[0]

    def side(child: Node, which: Literal["left", "right"]) -> str:
        text = to_infix(child)
        return f"({text})" if _needs_parens(child, node.op, which) else text

    return f"{side(node.left, 'left')} {node.op} {side(node.right, 'right')}"


def operator_count(node: Node) -> int:
    if isinstance(node, BinOp):
        return 1 + operator_count(node.left) + operator_count(node.right)
    return 0


def nesting_depth(node: Node) -> int:
    """Deepest stack of parentheses the minimal infix form needs: `a+b*c` 0, `(a+b)*c` 1,
    `((a+b)*c-d)/e` 2. Parentheses that precedence makes redundant do not count."""
    if not isinstance(node, BinOp):
        return 0
    left = nesting_depth(node.left) + _needs_parens(node.left, node.op, "left")
    right = nesting_depth(node.right) + _needs_parens(node.right, node.op, "right")
    return max(left, right)


def complexity_of(node: Node) -> str:
    """simple: 0-2 operators and no nesting; medium: 3-4 operators or one level of nesting;
    complex: 5+ operators or deeper nesting (method.md section 4)."""
    ops, depth = operator_count(node), nesting_depth(node)
    if ops >= 5 or depth >= 2:
        return "complex"
    if ops >= 3 or depth == 1:
        return "medium"
    return "simple"


def complexity(tokens: Sequence[str]) -> str:
    """Complexity level ("simple" | "medium" | "complex") of a prefix expression."""
    return complexity_of(from_prefix(tokens))
