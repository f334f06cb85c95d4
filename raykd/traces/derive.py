"""Source (c): a verbose trace derived from a problem's gold equation.

When no teacher writes traces, the gold equation still says which operations solve the problem.
`derive_trace` turns it into the kind of trace a teacher writes: the question restated, then for
each binary operation (in evaluation order, innermost first) a restatement of the facts it uses,
the computation `a op b = c`, sometimes a check by the inverse operation, a closing sentence, and
the `Answer:` line. The wording comes from a few templates picked by a seeded RNG, so a trace is
a pure function of (problem, seed). The verbosity is the point: it is what pruning removes.

Every derived trace reaches the gold answer (post-operation applied); `DeriveError` otherwise.
"""

from __future__ import annotations

import random
import re

from raykd.data.answers import answers_match, apply_post_op
from raykd.data.expressions import (
    BinOp,
    ExpressionError,
    Node,
    Num,
    Placeholder,
    evaluate,
    from_prefix,
)
from raykd.data.numbers import format_number
from raykd.data.problem import Problem
from raykd.traces.format import Trace, answer_text
from raykd.traces.steps import computations

CHECK_PROBABILITY = 0.5
"""Chance that an invertible step is followed by a check line."""

_QUESTION = ("We need to find: {q}", "The question asks: {q}", "Let's work out the answer to: {q}")
_FACT = ("We know: {f}", "From the problem: {f}", "The problem tells us: {f}")
_COMPUTE = ("{e}.", "So we compute {e}.", "That gives {e}.", "Working it out, {e}.")
_CHECK = ("Check: {e}.", "Verify: {e}.", "Check: {e}, which matches.")
_ROUND = {"floor": "Rounding down to a whole number gives {v}.", "ceil": "Rounding up to a whole number gives {v}."}
_CLOSE = ("So the answer is {v}.", "Therefore the answer is {v}.", "That means the answer is {v}.")
_INVERSE = {"+": "-", "-": "+", "*": "/", "/": "*"}
_SENTENCE = re.compile(r"(?:[^.!?。！？．]|\.(?=\d))+(?:[.!?。！？．]+|$)")  # "0.36" is no sentence end


class DeriveError(ValueError):
    """A problem whose gold equation cannot give a trace that reaches its gold answer."""


def _num(value: float) -> str:
    """An operand as a trace writes it; negatives parenthesised so `a - (-3)` stays parseable."""
    text = format_number(value)
    return f"({text})" if value < 0 else text


def _operate(op: str, a: float, b: float) -> float:
    """`a op b` by raykd's safe evaluator (its range and division checks included)."""
    return evaluate(BinOp(op, Num(a, format_number(a)), Num(b, format_number(b))))


def _sentences(text: str) -> list[tuple[int, int, str]]:
    """(start, end, sentence) for each sentence of the problem text."""
    return [(m.start(), m.end(), m.group().strip()) for m in _SENTENCE.finditer(text) if m.group().strip()]


def _fact(problem: Problem, index: int) -> str | None:
    """The sentence of the problem text that holds number `index`."""
    if index >= len(problem.number_spans):
        return None
    start = problem.number_spans[index][0]
    for s, e, sentence in _sentences(problem.text):
        if s <= start < e:
            return " ".join(sentence.split())
    return None


def _question(problem: Problem) -> str | None:
    questions = [s for _, _, s in _sentences(problem.text) if s.endswith(("?", "？"))]
    return " ".join(questions[-1].split()) if questions else None


def derive_trace(problem: Problem, seed: int = 0) -> Trace:
    """A verbose, deterministic trace for `problem` from its gold equation; see the module doc."""
    if not problem.equation:
        raise DeriveError(f"problem {problem.id}: no gold equation to derive a trace from")
    rng = random.Random(f"{seed}:{problem.id}")
    try:
        tree = from_prefix(problem.equation)
    except ExpressionError as exc:
        raise DeriveError(f"problem {problem.id}: {exc}") from None
    steps: list[str] = []
    if (question := _question(problem)) is not None:
        steps.append(rng.choice(_QUESTION).format(q=question))
    stated: set[str] = set()

    def walk(node: Node) -> float:
        if isinstance(node, Placeholder):
            if node.index >= len(problem.numbers):
                raise DeriveError(f"problem {problem.id}: N{node.index} but {len(problem.numbers)} numbers")
            return problem.numbers[node.index]
        if isinstance(node, Num):
            return node.value
        assert isinstance(node, BinOp)
        left, right = walk(node.left), walk(node.right)
        for child in (node.left, node.right):  # restate the given facts this step uses, once each
            fact = _fact(problem, child.index) if isinstance(child, Placeholder) else None
            if fact and fact not in stated and not computations(fact):  # "36/18=0.02" would read as a step
                stated.add(fact)
                steps.append(rng.choice(_FACT).format(f=fact))
        try:
            result = _operate(node.op, left, right)
        except ExpressionError as exc:
            raise DeriveError(f"problem {problem.id}: {exc}") from None
        steps.append(rng.choice(_COMPUTE).format(e=f"{_num(left)} {node.op} {_num(right)} = {format_number(result)}"))
        if node.op in _INVERSE and right != 0 and result != 0 and rng.random() < CHECK_PROBABILITY:
            try:
                back = _operate(_INVERSE[node.op], result, right)
            except ExpressionError:
                back = None
            if back is not None and format_number(back) == format_number(left):
                inverse = f"{_num(result)} {_INVERSE[node.op]} {_num(right)} = {format_number(left)}"
                steps.append(rng.choice(_CHECK).format(e=inverse))
        return result

    if isinstance(tree, Placeholder) and (fact := _fact(problem, tree.index)):  # the answer is given
        steps.append(rng.choice(_FACT).format(f=fact))
    value = walk(tree)
    post_op = problem.meta.get("post_op")
    final = apply_post_op(value, post_op)
    if post_op is not None and final != value:
        steps.append(_ROUND[post_op].format(v=format_number(final)))
    if not answers_match(final, problem.answer, gold_text=problem.answer_text or None):
        raise DeriveError(f"problem {problem.id}: the gold equation gives {format_number(final)}, not the gold {problem.answer}")
    steps.append(rng.choice(_CLOSE).format(v=answer_text(final)))
    return Trace(tuple(steps), answer_text(final))
