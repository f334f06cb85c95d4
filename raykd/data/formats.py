"""One row of each known data set format -> one `Problem` (or a `RowError` saying why not).

Rows arrive as dicts: JSON objects as stored, ASDiv XML problems converted by the reader to the
same shape as MWPToolkit's ASDiv-A JSON (`@ID`, `Body`, ..., `Solution-Type` possibly a dict
`{"@Subgoal-1": .., "#text": ..}`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from raykd.data.build import RowError, build_problem, field, row_id
from raykd.data.gsm8k import gsm8k_problem
from raykd.data.problem import Problem

FORMATS: tuple[str, ...] = ("asdiv-a", "math23k", "mawps", "svamp", "gsm8k")

_ASDIV_POST_OPS = {"Floor-Division": "floor", "Ceil-Division": "ceil"}


def _join(*parts: str) -> str:
    return " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())


def _asdiv(row: dict[str, Any], index: int) -> Problem:
    body, question = field(row, "Body"), field(row, "Question")
    formula, answer = field(row, "Formula"), field(row, "Answer")
    solution_type = row.get("Solution-Type", "")
    final_type = solution_type.get("#text", "") if isinstance(solution_type, dict) else str(solution_type)
    if not isinstance(formula, str):
        raise RowError("unusable equation", f"formula is not text: {formula!r}")
    expression = formula.split("=")[0] if formula.count("=") == 1 else formula
    return build_problem(
        id=row_id(row, index, "asdiv-a"),
        text=_join(body, question),
        equation=expression,
        answer=answer,
        source="asdiv-a",
        post_op=_ASDIV_POST_OPS.get(final_type.strip()),
        meta={"solution_type": solution_type, "grade": row.get("@Grade", row.get("Grade"))},
    )


def _math23k(row: dict[str, Any], index: int) -> Problem:
    return build_problem(
        id=row_id(row, index, "math23k"),
        text=field(row, "original_text"),
        equation=field(row, "equation"),
        answer=field(row, "ans"),
        source="math23k",
        language="zh",
        meta={"segmented_text": row.get("segmented_text")},
    )


def _mawps(row: dict[str, Any], index: int) -> Problem:
    return build_problem(
        id=row_id(row, index, "mawps"),
        text=field(row, "original_text", "sQuestion"),
        equation=field(row, "equation"),
        answer=field(row, "ans"),
        source="mawps",
    )


_SVAMP_SLOT = re.compile(r"\bnumber(\d+)\b")


def _svamp(row: dict[str, Any], index: int) -> Problem:
    equation = field(row, "Equation")
    if isinstance(equation, str) and _SVAMP_SLOT.search(equation):  # MWPToolkit's masked variant
        values = str(field(row, "Numbers")).split()
        try:
            equation = _SVAMP_SLOT.sub(lambda m: values[int(m.group(1))], equation)
        except IndexError:
            raise RowError("unusable equation", f"{equation!r} refers to a missing number") from None
    return build_problem(
        id=row_id(row, index, "svamp"),
        text=_join(field(row, "Body"), field(row, "Question")),
        equation=equation,
        answer=field(row, "Answer"),
        source="svamp",
        meta={"type": row.get("Type")},
    )


CONVERTERS: dict[str, Callable[[dict[str, Any], int], Problem]] = {
    "asdiv-a": _asdiv,
    "math23k": _math23k,
    "mawps": _mawps,
    "svamp": _svamp,
    "gsm8k": gsm8k_problem,
}


def convert_row(fmt: str, row: Any, index: int) -> Problem:
    """The problem in row `index` of a file in format `fmt`; raises `RowError`."""
    if not isinstance(row, dict):
        raise RowError("not an object", f"row is {type(row).__name__}")
    return CONVERTERS[fmt](row, index)
