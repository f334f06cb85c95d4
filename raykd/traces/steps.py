"""Step decomposition, skill tagging and the step/value graph of a trace (DRP's analysis half).

A step is one line of a trace. Its computations are the `expression = number` spans it holds
("So 12 - 5 = 7.", "48/2 = 24 clips"), read by raykd's safe infix parser (never `eval`). Skills:

- an arithmetic step takes the skill of its (first) computation's top operator: "add",
  "subtract", "multiply", "divide", "power"; "unit-conversion" when that computation multiplies or
  divides by a unit factor (60, 100, 1000, 12, 24, ...) and the line names a matching unit;
- "check": starts with Check/Verify/Double-check, or recomputes a value the trace already had
  from an earlier result (the inverse of an earlier step: `7 + 5 = 12` after `12 - 5 = 7`);
- "other": a non-arithmetic step that changes a value (rounding: "Rounding down gives 8."); it
  uses the earlier results it names, else the latest result (the one it rounds);
- "restatement": any other step without a computation (facts, the question, "So the answer is 7.").

The graph records, for each step, the values it produces and, for each value it uses, the earlier
non-check step that produced it (None: a given number; a check never counts as a producer, its
result is a value the trace already had). Values are matched with a small relative tolerance,
so `8.133333` written by one step matches `8.133333333333333` used by another.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from raykd.data.answers import parse_answer
from raykd.data.expressions import BinOp, ExpressionError, Node, evaluate, parse_infix
from raykd.traces.format import Trace

SKILLS: tuple[str, ...] = (
    "add", "subtract", "multiply", "divide", "power", "unit-conversion", "restatement", "check", "other",
)
ARITHMETIC_SKILLS: tuple[str, ...] = ("add", "subtract", "multiply", "divide", "power", "unit-conversion")
OP_SKILL = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide", "^": "power"}

UNIT_FACTORS: dict[float, tuple[str, ...]] = {
    60: ("second", "minute", "hour"),
    3600: ("second", "hour"),
    24: ("hour", "day"),
    7: ("day", "week"),
    52: ("week", "year"),
    365: ("day", "year"),
    12: ("inch", "foot", "feet", "dozen", "month", "year"),
    3: ("feet", "foot", "yard"),
    16: ("ounce", "pound"),
    10: ("millimeter", "centimeter", "mm", "cm"),
    100: ("cent", "dollar", "centimeter", "meter", "cm", "percent", "%"),
    1000: ("meter", "kilometer", "gram", "kilogram", "milliliter", "liter", "km", "kg", "ml"),
}
"""Unit factors and the unit words (singular stems) that make a step using them a conversion."""

VALUE_TOLERANCE = 1e-6
_CHECK_WORDS = re.compile(r"^\s*(?:check|verify|verification|double[- ]check|to check|to verify|sanity check)\b", re.IGNORECASE)
_ROUND_WORDS = re.compile(r"\bround(?:ing|ed|s)?\s+(?:it\s+|this\s+|that\s+)?(?:down|up|off|to)\b", re.IGNORECASE)
_EQUALS = re.compile(r"=\s*(?P<rhs>\(?-?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\(?-?\$?\.\d+)")
_LHS_CHARS = set("0123456789.,+-*/^×÷()[]$% \t")
_NUMBER = re.compile(r"(?<![\w.])-?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?|(?<![\w.])\.\d+")


@dataclass(frozen=True)
class Computation:
    """One `expression = result` in a step: the text as written, its tree, and both values."""

    text: str
    tree: Node
    operands: tuple[float, ...]
    value: float
    result: float

    @property
    def correct(self) -> bool:
        """Whether the expression evaluates to the result it states (at the result's precision)."""
        return close(self.value, self.result) or _rounds_to(self.value, self.text.split("=")[-1])


@dataclass(frozen=True)
class Step:
    """One step of a trace: its text, skill, computations, and the values it produces."""

    index: int
    text: str
    skill: str
    computations: tuple[Computation, ...]
    produces: tuple[float, ...]
    uses: tuple[float, ...]
    uses_steps: tuple[int | None, ...]  # for each used value: the earlier producing step, or None (given)

    @property
    def arithmetic(self) -> bool:
        return self.skill in ARITHMETIC_SKILLS


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=VALUE_TOLERANCE, abs_tol=1e-9)


def _rounds_to(value: float, written: str) -> bool:
    """Whether `value` rounds to `written` at the decimals it is written with ("3.33" for 10/3)."""
    written = written.strip().strip("()").replace("$", "").replace(",", "")
    if "." not in written:
        return False
    decimals = len(written.split(".")[1])
    try:
        return abs(value - float(written)) <= 0.5 * 10.0**-decimals * (1 + 1e-9)
    except ValueError:
        return False


def _leaves(node: Node) -> list[float]:
    if isinstance(node, BinOp):
        return [*_leaves(node.left), *_leaves(node.right)]
    return [evaluate(node)]


def _balanced(text: str) -> str:
    """`text` without leading characters that unbalance it (a stray `)`, an operator)."""
    text = text.strip()
    while text and (text[0] in ")+*/^×÷," or (text[0] == "." and not text[1:2].isdigit())):
        text = text[1:].strip()
    while text.count("(") > text.count(")") and "(" in text:
        text = text[text.index("(") + 1 :].strip()
    return text


def computations(line: str) -> tuple[Computation, ...]:
    """Every `expression = number` in `line` whose expression parses and has an operator."""
    found: list[Computation] = []
    for m in _EQUALS.finditer(line):
        start = m.start()
        while start > 0 and line[start - 1] in _LHS_CHARS:
            start -= 1
        lhs = _balanced(line[start : m.start()])
        rhs = m.group("rhs")
        if rhs.startswith("(") and not rhs.endswith(")"):
            rhs = rhs[1:]
        tree = None
        while lhs:  # shrink from the left until an expression parses ("is 3 * 4" -> "3 * 4")
            try:
                tree = parse_infix(lhs.replace("$", ""))
                break
            except ExpressionError:
                lhs = _balanced(lhs[1:])
        if tree is None or not isinstance(tree, BinOp):
            continue
        try:
            value, result = evaluate(tree), parse_answer(rhs.replace("(", "").replace(")", ""))
        except (ExpressionError, ValueError):
            continue
        text = f"{' '.join(lhs.split())} = {rhs.strip()}"
        found.append(Computation(text, tree, tuple(_leaves(tree)), value, result))
    return tuple(found)


def numbers_in(line: str) -> tuple[float, ...]:
    """The numbers written in a line (digits only: "five" is a word, not a value here)."""
    values: list[float] = []
    for m in _NUMBER.finditer(line):
        try:
            values.append(parse_answer(m.group()))
        except ValueError:
            continue
    return tuple(values)


def _is_unit_conversion(comp: Computation, line: str) -> bool:
    if not isinstance(comp.tree, BinOp) or comp.tree.op not in ("*", "/"):
        return False
    words = line.lower()
    for operand in comp.operands:
        units = UNIT_FACTORS.get(operand)
        if units and any(re.search(rf"(?<![a-z]){re.escape(u)}", words) for u in units):
            return True
    return False


def _known(value: float, values: Sequence[float]) -> bool:
    return any(close(value, v) for v in values)


def decompose(trace: Trace) -> tuple[Step, ...]:
    """The steps of `trace`, tagged, with the step/value graph (see the module doc)."""
    steps: list[Step] = []
    produced: list[tuple[float, int]] = []  # (value, producing non-check step), in order
    seen: list[float] = []  # every value written so far: operands, results, numbers in text
    answer = trace.value
    for index, line in enumerate(trace.steps):
        comps = computations(line)
        uses: list[float] = []
        real = [p for p, _ in produced]  # values produced by steps that are not checks
        if comps:
            results = [c.result for c in comps]
            # operands, less those an earlier computation of the same step produced ("3*4 = 12, 12*60 = 720")
            uses = [v for i, c in enumerate(comps) for v in c.operands if not _known(v, results[:i])]
            recompute = _known(comps[0].result, seen) and any(_known(v, real) for v in uses)
            answer_new = answer is not None and close(comps[0].result, answer) and not _known(answer, real)
            if _CHECK_WORDS.match(line) or (recompute and not answer_new):
                skill = "check"
            elif _is_unit_conversion(comps[0], line):
                skill = "unit-conversion"
            else:
                skill = OP_SKILL[comps[0].tree.op]  # type: ignore[union-attr]
            produces = tuple(results)
        elif _CHECK_WORDS.match(line):
            skill, produces = "check", ()
        elif _ROUND_WORDS.search(line) and (new := [v for v in numbers_in(line) if not _known(v, seen)]):
            skill, produces = "other", tuple(new[-1:])
            uses = [v for v in numbers_in(line) if _known(v, real)]
            if not uses and produced:  # "Rounding down gives 8." rounds the latest result
                uses = [produced[-1][0]]
        else:
            skill, produces = "restatement", ()
        uses_steps = tuple(_producer(v, produced) for v in uses)
        steps.append(Step(index, line, skill, comps, produces, tuple(uses), uses_steps))
        seen.extend([*uses, *produces, *numbers_in(line)])
        if skill != "check":  # a check's result is a value the trace already had: never a producer
            produced.extend((v, index) for v in produces)
    return tuple(steps)


def _producer(value: float, produced: Sequence[tuple[float, int]]) -> int | None:
    """The most recent step that produced `value`, or None (a given number)."""
    for v, i in reversed(produced):
        if close(v, value):
            return i
    return None
