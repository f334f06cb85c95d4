"""Make one `Problem` from a row's text, gold equation and gold answer: the step every reader shares."""

from __future__ import annotations

from typing import Any

from raykd.data.answers import AnswerError, answers_match, apply_post_op, parse_answer
from raykd.data.equations import solve_equation
from raykd.data.expressions import ExpressionError, complexity_of, evaluate, to_prefix
from raykd.data.masking import mask_numbers
from raykd.data.numbers import Language, NumberTooLarge, extract_numbers
from raykd.data.problem import Problem


class RowError(ValueError):
    """A row that cannot become a problem; the message ("kind: detail") is the skip reason."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


def field(row: dict[str, Any], *names: str) -> Any:
    """The first of `names` present in `row`; `RowError` naming the field if none is."""
    for name in names:
        if row.get(name) is not None:
            return row[name]
    raise RowError("missing field", repr(names[0]))


ID_FIELDS: tuple[str, ...] = ("@ID", "ID", "id", "iIndex")
"""Where the data sets keep a row's id (ASDiv, SVAMP, Math23k/MAWPS, old MAWPS)."""


def row_id(row: Any, index: int, source: str) -> str:
    """The row's own id, else "<source>-<index>" (GSM8K rows have none)."""
    if isinstance(row, dict):
        for name in ID_FIELDS:
            if row.get(name) not in (None, ""):
                return str(row[name])
    return f"{source}-{index}"


def build_problem(
    *,
    id: str,
    text: Any,
    equation: Any,
    answer: Any,
    source: str,
    language: Language = "en",
    post_op: str | None = None,
    complexity: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Problem:
    """A problem from raw row fields; `equation=None` makes an answer-only problem (then
    `complexity` must be given). Raises `RowError` with the reason the row cannot be used."""
    if not isinstance(text, str) or not text.strip():
        raise RowError("empty text")
    try:
        gold = parse_answer(answer)
    except AnswerError:
        raise RowError("unparseable answer", repr(answer)) from None
    answer_text = answer if isinstance(answer, str) else repr(answer)
    try:
        mentions = extract_numbers(text, language=language)
    except NumberTooLarge as exc:
        raise RowError("number too large", str(exc)) from None
    values = [m.value for m in mentions]
    meta = {**(meta or {}), "post_op": post_op}
    tokens: tuple[str, ...] = ()
    if equation is not None:
        if not isinstance(equation, str) or not equation.strip():
            raise RowError("unusable equation", "empty")
        meta["equation_text"] = equation
        try:
            tree = solve_equation(
                equation, choose=lambda v: answers_match(apply_post_op(v, post_op), gold, gold_text=answer_text)
            )
            masked = mask_numbers(tree, values)
            exact = evaluate(masked, values)
        except ExpressionError as exc:
            raise RowError("unusable equation", f"{equation!r}: {exc}") from None
        tokens = to_prefix(masked)
        complexity = complexity_of(masked)
        if post_op is not None:
            meta["exact_answer"] = exact
    elif complexity is None:
        raise ValueError("an answer-only problem needs its complexity")
    return Problem(
        id=id,
        text=text,
        numbers=tuple(values),
        number_spans=tuple(m.span for m in mentions),
        equation=tokens,
        answer=gold,
        complexity=complexity,
        source=source,
        answer_text=answer_text,
        meta=meta,
    )
