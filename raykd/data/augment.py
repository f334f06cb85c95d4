"""Number-substituted variants of word problems: an augmented transfer set for distillation.

TinyBERT's ablation shows distillation on a small task loses several points without an augmented
transfer set; ASDiv-A's ~900 training problems are that regime. A variant keeps a problem's text and
gold equation and draws new values for the numbers the equation uses, so the gold equation labels it
for the task loss (and the teacher for the distillation terms). A draw is kept only if:

- every number keeps its kind: integers stay integers (written with the same decimal places, the same
  thousands separators, as words where the original was words, "%" kept), decimals keep their places,
  values stay near the original (within [1/2, 2] of it, at least the original +- 3 for small integers),
  percentages stay <= 100;
- every intermediate value of the equation keeps its kind (positive / non-negative / integer where the
  original's was), nothing divides by zero;
- the answer keeps its kind (a positive integer where the original was one; a decimal with no more
  places than the problem's numbers or answer are written with; a post-operation ("floor"/"ceil")
  still applies to a non-integer quotient where the original's was one);
- the new text reads back (`extract_numbers`) as exactly the new numbers at the new spans.

Draws are seeded from (seed, problem id) through SHA-256, so variants are the same on every run and
machine, and independent of which other problems are augmented with them. A problem for which no
valid variant is found in a bounded number of draws gets fewer variants, and the reason is counted.
Numbers the equation does not use are left as written. No torch here: pure data.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from raykd.data.answers import (
    answer_decimals,
    apply_post_op,
    equation_reproduces_answer,
)
from raykd.data.expressions import (
    BinOp,
    ExpressionError,
    Node,
    Num,
    Placeholder,
    evaluate,
    from_prefix,
    to_infix,
)
from raykd.data.numbers import extract_numbers, format_number, number_to_words
from raykd.data.problem import Problem

MAX_VARIANTS = 32
"""Most variants asked of one problem (ChainConfig.augment's bound)."""
TRIES_PER_VARIANT = 100
"""Draws tried for each variant before the problem is left with fewer."""

REASONS = {
    "no_equation": "no gold equation",
    "not_reproduced": "the gold equation does not give the gold answer",
    "no_number_used": "the equation uses no (non-zero) number of the text",
    "fraction_in_text": "a number the equation uses is written as a fraction",
    "unsupported_form": "a number the equation uses is written in a form the rewriter does not know",
    "not_english": "not an English text",
    "percent_answer": "the gold answer is written as a percentage",
    "no_read_back": "the original text does not read back as its numbers",
    "fewer_valid_draws": "fewer valid draws than asked",
}
"""Why a problem got fewer variants than asked (keys of the counter `augment_problems` returns)."""

_DIGITS = re.compile(r"^(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?P<suffix>\s?%)?$")
_WORDS = re.compile(r"^[A-Za-z]+(?:[\s-]+[A-Za-z]+)*$")
_CJK = re.compile(r"[\u3400-\u9fff]")
_INT_TOL = 1e-9


@dataclass(frozen=True)
class _Slot:
    """How one number the equation uses is written, and the values it may take."""

    index: int
    form: str  # "digits" | "words"
    decimals: int  # places written after the point ("3.00" -> 2)
    integer: bool  # the original value is whole: draws are whole too
    commas: bool
    suffix: str  # "%", " %" or ""
    capital: bool  # words starting with a capital letter
    low: int  # draws are units of 10**-decimals (whole numbers when `integer`), in [low, high]
    high: int

    def write(self, units: int) -> tuple[str, float]:
        """The text of a draw and the value the number reader gives it."""
        if self.form == "words":
            text = number_to_words(units)
            return (text[0].upper() + text[1:] if self.capital else text), float(units)
        value = units if self.integer else units / 10**self.decimals
        body = f"{value:,.{self.decimals}f}" if self.commas else f"{value:.{self.decimals}f}"
        return body + self.suffix, float(body.replace(",", ""))


def _slot(problem: Problem, index: int) -> _Slot | str:
    """The slot of number `index`, or the key of the reason it cannot be rewritten."""
    start, end = problem.number_spans[index]
    written, value = problem.text[start:end], problem.numbers[index]
    if "/" in written:
        return "fraction_in_text"
    integer = value == int(value)
    if m := _DIGITS.match(written):
        num = m.group("num")
        decimals = len(num.split(".")[1]) if "." in num else 0
        suffix = m.group("suffix") or ""
        commas = "," in num
        form, capital = "digits", False
    elif _WORDS.match(written) and integer:
        decimals, suffix, commas, form, capital = 0, "", False, "words", written[0].isupper()
    else:
        return "unsupported_form"
    scale = 1 if integer else 10**decimals
    units = round(value * scale)
    low, high = max(1, math.ceil(units / 2)), max(units * 2, units + 3)
    if suffix:
        high = min(high, 100 * scale) if value <= 100 else high
    if form == "words":
        high = min(high, 999_999)
    return _Slot(index, form, decimals, integer, commas, suffix, capital, low, max(low, high))


def _decimals_of(value: float) -> int:
    text = format_number(value)
    return len(text.split(".")[1]) if "." in text else 0


def _is_int(value: float) -> bool:
    return abs(value - round(value)) <= _INT_TOL * max(1.0, abs(value))


def _values(node: Node, numbers: Sequence[float], out: list[float]) -> float:
    """Value of `node`, appending every operator's value to `out` in a fixed (post-)order."""
    if isinstance(node, BinOp):
        a = _values(node.left, numbers, out)
        b = _values(node.right, numbers, out)
        value = evaluate(BinOp(node.op, Num(a, ""), Num(b, "")))
        out.append(value)
        return value
    return evaluate(node, numbers)


def _same_kind(original: float, new: float) -> bool:
    """`new` is positive / non-negative / whole where `original` is."""
    if original > 0 and not new > 0:
        return False
    if original >= 0 and new < 0:
        return False
    return not (_is_int(original) and not _is_int(new))


def _seeded(seed: int, problem_id: str) -> random.Random:
    digest = hashlib.sha256(f"raykd-augment\0{seed}\0{problem_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _substituted(node: Node, numbers: Sequence[float]) -> Node:
    """`node` with placeholders replaced by their values (for the equation_text of a variant)."""
    if isinstance(node, BinOp):
        return BinOp(node.op, _substituted(node.left, numbers), _substituted(node.right, numbers))
    if isinstance(node, Placeholder):
        return Num(float(numbers[node.index]), format_number(numbers[node.index]))
    return node


class _Augmenter:
    """One problem's rewriting rules, checked once; `draw` tries one set of new numbers."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.reason: str | None = None
        self.slots: list[_Slot] = []
        if not problem.equation:
            self.reason = "no_equation"
            return
        if _CJK.search(problem.text):
            self.reason = "not_english"
            return
        if not equation_reproduces_answer(problem):
            self.reason = "not_reproduced"
            return
        self.tree = from_prefix(problem.equation)
        self.post_op = problem.meta.get("post_op")
        self.original_steps: list[float] = []
        self.exact = _values(self.tree, problem.numbers, self.original_steps)
        reproduced = apply_post_op(self.exact, self.post_op)
        mentions = extract_numbers(problem.text)
        if [m.value for m in mentions] != list(problem.numbers) or [m.span for m in mentions] != list(problem.number_spans):
            self.reason = "no_read_back"
            return
        used = sorted({int(t[1:]) for t in problem.equation if re.fullmatch(r"N\d+", t)})
        used = [i for i in used if i < len(problem.numbers) and problem.numbers[i] != 0]
        if not used:
            self.reason = "no_number_used"
            return
        for index in used:
            slot = _slot(problem, index)
            if isinstance(slot, str):
                self.reason = slot
                return
            self.slots.append(slot)
        text = problem.answer_text or format_number(problem.answer)
        if "%" in text:
            self.reason = "percent_answer"
            return
        self.answer_places = answer_decimals(text) or 0
        self.rounded_gold = not math.isclose(reproduced, problem.answer, rel_tol=1e-12, abs_tol=1e-12)
        self.places = max([self.answer_places, _decimals_of(problem.answer)]
                          + [s.decimals for s in self.slots if not s.integer])
        self.integer_answer = _is_int(problem.answer)

    def draw(self, rng: random.Random) -> tuple[tuple[float, ...], dict[int, str]] | None:
        """New numbers and the texts of the changed ones, or None if this draw breaks a rule."""
        numbers = list(self.problem.numbers)
        texts: dict[int, str] = {}
        for slot in self.slots:
            texts[slot.index], numbers[slot.index] = slot.write(rng.randint(slot.low, slot.high))
        if numbers == list(self.problem.numbers):
            return None
        steps: list[float] = []
        try:
            exact = _values(self.tree, numbers, steps)
        except ExpressionError:
            return None
        if not all(_same_kind(o, n) for o, n in zip(self.original_steps, steps)):
            return None
        if not _same_kind(self.exact, exact) or abs(exact) > 1e9:
            return None
        if self.post_op and not _is_int(self.exact) and _is_int(exact):
            return None  # the quotient keeps its remainder
        if (not self.post_op and not self.rounded_gold and not self.integer_answer
                and abs(round(exact, self.places) - exact) > _INT_TOL * max(1.0, abs(exact))):
            return None  # a decimal answer with more places than the problem writes
        answer = self._answer(exact)
        if not _same_kind(self.problem.answer, answer):
            return None
        return tuple(numbers), texts

    def _answer(self, exact: float) -> float:
        if self.post_op:
            return apply_post_op(exact, self.post_op)
        if self.rounded_gold:
            return round(exact, self.answer_places)
        if self.integer_answer:
            return float(round(exact))
        return round(exact, self.places)

    def variant(self, numbers: tuple[float, ...], texts: dict[int, str], j: int) -> Problem | None:
        """The rewritten problem, or None if its text does not read back as exactly its numbers."""
        p = self.problem
        pieces, spans, cursor, shift = [], list(p.number_spans), 0, 0
        for index, (start, end) in enumerate(p.number_spans):
            new = texts.get(index, p.text[start:end])
            pieces += [p.text[cursor:start], new]
            spans[index] = (start + shift, start + shift + len(new))
            shift += len(new) - (end - start)
            cursor = end
        text = "".join(pieces) + p.text[cursor:]
        mentions = extract_numbers(text)
        if [m.value for m in mentions] != list(numbers) or [m.span for m in mentions] != spans:
            return None
        exact = _values(self.tree, numbers, [])
        answer = self._answer(exact)
        answer_text = self._answer_text(answer)
        meta = {**p.meta, "augmented_from": p.id, "equation_text": to_infix(_substituted(self.tree, numbers))}
        if "exact_answer" in meta:
            meta["exact_answer"] = exact
        return replace(p, id=f"{p.id}~aug{j}", text=text, numbers=numbers, number_spans=tuple(spans), answer=answer,
                       answer_text=answer_text, meta=meta)

    def _answer_text(self, answer: float) -> str:
        """The gold as the original writes it: its decimal places and its unit ("5 (times)")."""
        old = self.problem.answer_text
        places = self.answer_places
        if places and (self.rounded_gold or _is_int(answer * 10**places)):
            body = f"{answer:.{places}f}"
        else:
            body = format_number(answer)
        unit = re.search(r"\s*\([^()]*[^\W\d][^()]*\)$", old) if old else None
        return body + (unit.group() if unit else "")


def variants_and_reason(problem: Problem, k: int, seed: int, *,
                        avoid_texts: Collection[str] = ()) -> tuple[list[Problem], str | None]:
    """Up to `k` variants of `problem` and, if fewer than `k`, the key (`REASONS`) of why.
    `avoid_texts`: texts no variant may have (the evaluation problems')."""
    if not isinstance(k, int) or not 0 <= k <= MAX_VARIANTS:
        raise ValueError(f"variants per problem must be an integer in [0, {MAX_VARIANTS}], got {k!r}")
    if k == 0:
        return [], None
    aug = _Augmenter(problem)
    if aug.reason:
        return [], aug.reason
    rng = _seeded(seed, problem.id)
    out: list[Problem] = []
    seen = {problem.numbers}
    tries = 0
    while len(out) < k and tries < TRIES_PER_VARIANT * k:
        tries += 1
        drawn = aug.draw(rng)
        if drawn is None or drawn[0] in seen:
            continue
        seen.add(drawn[0])
        variant = aug.variant(*drawn, len(out) + 1)
        if variant is not None and variant.text not in avoid_texts and variant.text != problem.text:
            out.append(variant)
    return out, (None if len(out) == k else "fewer_valid_draws")


def number_variants(problem: Problem, k: int, seed: int, *, avoid_texts: Collection[str] = ()) -> list[Problem]:
    """Up to `k` number-substituted variants of `problem`, deterministic for (seed, problem.id);
    `variants_and_reason` also says why there are fewer."""
    return variants_and_reason(problem, k, seed, avoid_texts=avoid_texts)[0]


def augment_problems(problems: Sequence[Problem], k: int, seed: int, *,
                     avoid_texts: Collection[str] = ()) -> tuple[list[Problem], Counter]:
    """The originals followed by each one's variants (in the originals' order), and how many problems
    got fewer than `k` variants, by reason (`REASONS` keys)."""
    avoid = set(avoid_texts)
    out: list[Problem] = list(problems)
    short: Counter = Counter()
    for problem in problems:
        variants, reason = variants_and_reason(problem, k, seed, avoid_texts=avoid)
        out.extend(variants)
        if reason:
            short[reason] += 1
    return out, short
