"""Find the numbers a problem text mentions, with their character spans.

The k-th number found becomes placeholder `Nk`, so the order (left to right) and the spans are
part of the data contract. Conventions (see docs/data.md):

- digits with thousands commas ("1,200" -> 1200), decimals ("3.5", ".5"), "$60.00" -> 60;
- percentages follow the equations of each language's data sets (`PERCENT_DIVISOR`): English
  keeps the number as written, "25%" -> 25 (MAWPS writes `25*0.01`, GSM8K `25/100`), Chinese
  gives the quantity, "25%" -> 0.25 (Math23k writes `25%` inside equations); the span covers "%";
- English: bare fractions "3/4" -> 0.75, mixed numbers "1 1/2" -> 1.5, number words
  ("five", "fifty-eight", "a hundred and five", "one hundred twenty"); "one" counts ("one of
  them" -> 1) except in "no one"; "half", "dozen", "twice" and ordinals do not count;
- Chinese (Math23k): parenthesised fractions "(2/5)" / "（2/5）" -> 0.4, mixed numbers
  "1(5/6)" -> 1 + 5/6; a bare "46/580" is two numbers (Math23k writes divisions that way).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Literal, NamedTuple

Language = Literal["en", "zh"]


PERCENT_DIVISOR: dict[str, float] = {"en": 1.0, "zh": 100.0}
"""What a percentage's written number is divided by to give its value, by text language."""


class NumberTooLarge(ValueError):
    """A number in a text that no float can hold (say, 400 digits): refused, never read as inf."""


class NumberMention(NamedTuple):
    """A number in a text: its value and the [start, end) character span it was read from."""

    value: float
    span: tuple[int, int]


_DECIMAL = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
_ZH_NUMBER = re.compile(
    r"(?<![\d.])(?:"
    r"(?P<mixed>(?P<mw>\d+)[(（](?P<mn>\d+)/(?P<md>\d+)[)）])"
    r"|(?P<frac>[(（](?P<fn>\d+(?:\.\d+)?)/(?P<fd>\d+(?:\.\d+)?)[)）])"
    rf"|(?P<dec>{_DECIMAL})(?P<pct>[%％])?"
    r")"
)
_EN_NUMBER = re.compile(
    r"(?<![\d./])(?:"
    r"(?P<mixed>(?P<mw>\d+) (?P<mn>\d+)/(?P<md>\d+))(?![\d/])"
    r"|(?P<frac>(?P<fn>\d+)/(?P<fd>\d+))(?![\d/]|\.\d)"
    rf"|(?P<dec>{_DECIMAL})(?P<pct>\s?%)?(?!\d|st\b|nd\b|rd\b|th\b)"
    r")"
)

_UNITS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen".split()
    )
}
_TENS = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)}
_SCALES = {"thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_WORD = re.compile(r"[A-Za-z]+")
_JOINER = re.compile(r"\s*-\s*|\s+")  # what may separate the words of one number


def _is_number_word(word: str) -> bool:
    return word in _UNITS or word in _TENS or word == "hundred" or word in _SCALES


def _parse_words(words: list[str]) -> tuple[int, int] | None:
    """Value of the longest prefix of `words` that is one number, and how many words it used."""
    total = current = 0
    last = ""  # kind of the last word consumed: unit, tens, hundred, scale
    used = 0
    last_scale = float("inf")
    i = 0
    while i < len(words):
        w = words[i]
        if w == "and" and last in ("hundred", "scale") and i + 1 < len(words):
            nxt = words[i + 1]
            if nxt in _UNITS or nxt in _TENS:
                i += 1
                continue
            break
        if w in _UNITS:
            if last == "unit" or (last == "tens" and _UNITS[w] >= 10) or (last and _UNITS[w] == 0):
                break
            current += _UNITS[w]
            last = "unit"
        elif w in _TENS:
            if last in ("unit", "tens"):
                break
            current += _TENS[w]
            last = "tens"
        elif w == "hundred":
            if last not in ("unit", "tens", "") or current >= 100:
                break
            current = (current or 1) * 100
            last = "hundred"
        elif w in _SCALES:
            scale = _SCALES[w]
            if last == "scale" or scale >= last_scale:
                break
            total += (current or 1) * scale
            current, last, last_scale = 0, "scale", scale
        else:
            break
        i += 1
        used = i
    if used == 0:
        return None
    return total + current, used


def _word_numbers(text: str) -> list[NumberMention]:
    words = list(_WORD.finditer(text))
    found: list[NumberMention] = []
    i = 0
    while i < len(words):
        first = words[i].group().lower()
        start = i
        if first == "a" and i + 1 < len(words) and words[i + 1].group().lower() in ("hundred", *_SCALES):
            start = i + 1  # "a hundred" = "one hundred"
        elif not _is_number_word(first):
            i += 1
            continue
        if (
            first == "one"
            and i > 0
            and words[i - 1].group().lower() == "no"
            and _JOINER.fullmatch(text[words[i - 1].end() : words[i].start()])
        ):
            i += 1
            continue
        # the run of words joined only by spaces or hyphens
        run = [words[start].group().lower()]
        j = start + 1
        while j < len(words) and _JOINER.fullmatch(text[words[j - 1].end() : words[j].start()]):
            run.append(words[j].group().lower())
            j += 1
        parsed = _parse_words(run)
        if parsed is None:
            i += 1
            continue
        value, used = parsed
        found.append(NumberMention(float(value), (words[i].start(), words[start + used - 1].end())))
        i = start + used
    return found


def _to_float(digits: str) -> float:
    return float(digits.replace(",", ""))


def extract_numbers(text: str, *, language: Language = "en") -> list[NumberMention]:
    """All numbers in `text`, left to right, as (value, span) pairs; see the module docstring."""
    pattern = _ZH_NUMBER if language == "zh" else _EN_NUMBER
    found: list[NumberMention] = []
    for m in pattern.finditer(text):
        try:
            if m.group("mixed"):
                if int(m.group("md")) == 0:
                    continue
                value = int(m.group("mw")) + int(m.group("mn")) / int(m.group("md"))
            elif m.group("frac"):
                denominator = _to_float(m.group("fd"))
                if denominator == 0:
                    continue
                value = _to_float(m.group("fn")) / denominator
            else:
                value = _to_float(m.group("dec"))
                if m.group("pct"):
                    value /= PERCENT_DIVISOR[language]
        except (OverflowError, ValueError):
            value = math.inf
        if not math.isfinite(value):
            written = m.group()
            raise NumberTooLarge(f"the number {written[:12]}... ({len(written)} characters) is too large to compute with")
        found.append(NumberMention(value, m.span()))
    if language == "en":
        found.extend(_word_numbers(text))
        found.sort(key=lambda n: n.span)
    return found


def format_number(value: float) -> str:
    """Canonical decimal text of a number, as constant tokens use it: 1.0 -> "1", 3.140 -> "3.14"."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def number_to_words(n: int) -> str:
    """English words for 0 <= n < 10**12 ("fifty-eight", "one hundred five"); inverse of the
    word reading in `extract_numbers`, used by the synthetic generator."""
    if not 0 <= n < 10**12:
        raise ValueError(f"no words for {n}")
    units = {v: w for w, v in _UNITS.items()}
    tens = {v: w for w, v in _TENS.items()}
    if n < 20:
        return units[n]
    if n < 100:
        return tens[n - n % 10] + (f"-{units[n % 10]}" if n % 10 else "")
    if n < 1000:
        rest = f" {number_to_words(n % 100)}" if n % 100 else ""
        return f"{units[n // 100]} hundred{rest}"
    word, scale = max((kv for kv in _SCALES.items() if kv[1] <= n), key=lambda kv: kv[1])
    rest = f" {number_to_words(n % scale)}" if n % scale else ""
    return f"{number_to_words(n // scale)} {word}{rest}"
