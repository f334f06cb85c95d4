"""GSM8K rows: the final answer after `####`, and an equation rebuilt from `<<a*b=c>>` annotations.

GSM8K writes its solution as prose with calculator annotations, not as one equation. The last
annotation whose result is the final answer is the root; a number in it that equals the result
of an earlier annotation is replaced by that annotation's expression (the most recent one),
recursively (annotations that do not parse are ignored). If no annotation yields the final
answer, or the composed equation cannot be evaluated, the problem is kept answer-only: empty
`equation`, `meta["answer_only"] = True`, and a complexity estimated from the operator count of
all its annotations. Percentages stay as written in English text ("25%" -> 25), which is how the
annotations use them (`<<80*25/100=20>>`).
"""

from __future__ import annotations

import math
import re
from typing import Any

from raykd.data.answers import AnswerError, answers_match, parse_answer
from raykd.data.build import RowError, build_problem, field, row_id
from raykd.data.expressions import (
    BinOp,
    ExpressionError,
    Node,
    Num,
    operator_count,
    parse_infix,
    to_infix,
)
from raykd.data.problem import Problem

_ANNOTATION = re.compile(r"<<([^<>]*)=([^<>=]*)>>")
_FINAL = re.compile(r"####\s*(.+?)\s*$", re.S)


def _annotations(solution: str) -> list[tuple[Node, float]]:
    """The annotations that parse, in order, as (expression tree, result)."""
    found: list[tuple[Node, float]] = []
    for m in _ANNOTATION.finditer(solution):
        try:
            found.append((parse_infix(m.group(1)), parse_answer(m.group(2))))
        except (ExpressionError, AnswerError):
            continue
    return found


def annotation_equation(solution: str, final: float) -> Node | None:
    """The expression the annotations of `solution` compose into for `final`, if they do."""
    steps = _annotations(solution)
    roots = [i for i, (_, result) in enumerate(steps) if answers_match(result, final)]
    if not roots:
        return None

    def expand(node: Node, before: int) -> Node:
        if isinstance(node, BinOp):
            return BinOp(node.op, expand(node.left, before), expand(node.right, before))
        if isinstance(node, Num):
            for j in range(before - 1, -1, -1):
                if math.isclose(node.value, steps[j][1], rel_tol=1e-9, abs_tol=1e-12):
                    return expand(steps[j][0], j)
        return node

    return expand(steps[roots[-1]][0], roots[-1])


def _estimated_complexity(solution: str) -> str:
    ops = sum(operator_count(tree) for tree, _ in _annotations(solution))
    return "complex" if ops >= 5 else "medium" if ops >= 3 else "simple"


def gsm8k_problem(row: dict[str, Any], index: int) -> Problem:
    question, solution = field(row, "question"), field(row, "answer")
    if not isinstance(solution, str) or not (m := _FINAL.search(solution)):
        raise RowError("missing field", "final answer after '####'")
    answer = m.group(1)
    try:
        final = parse_answer(answer)
    except AnswerError:
        raise RowError("unparseable answer", repr(answer)) from None
    tree = annotation_equation(solution, final)
    common: dict[str, Any] = {
        "id": row_id(row, index, "gsm8k"),
        "text": question,
        "answer": answer,
        "source": "gsm8k",
    }
    if tree is not None:
        try:
            return build_problem(equation=to_infix(tree), **common)
        except RowError:
            pass  # keep the answer only
    return build_problem(
        equation=None, complexity=_estimated_complexity(solution), meta={"answer_only": True}, **common
    )
