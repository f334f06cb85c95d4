"""The text form of a reasoning trace: one step per line, then one answer line.

    Tom has 3 bags with 4 apples each.
    3 * 4 = 12
    He gives away 5, so 12 - 5 = 7.
    Answer: 7

Steps are the non-empty lines before the answer line; the answer line is the first line that
starts with `ANSWER_PREFIX` (case-insensitive). A model's generation is cut at that line: what
follows it is not part of the trace. The answer is parsed by raykd's answer parser, never `eval`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from raykd.data.answers import parse_answer
from raykd.data.numbers import format_number

ANSWER_PREFIX = "Answer:"
_ANSWER_LINE = re.compile(r"^\s*answer\s*:\s*(.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class Trace:
    """Reasoning steps (one line each, no newlines inside) and the final answer's text."""

    steps: tuple[str, ...]
    answer: str

    def __post_init__(self) -> None:
        for step in self.steps:
            if "\n" in step or not step.strip():
                raise ValueError(f"a trace step must be one non-empty line, got {step!r}")
            if _ANSWER_LINE.match(step):
                raise ValueError(f"a trace step cannot be an answer line: {step!r}")

    def render(self) -> str:
        """The trace as text: steps, then `Answer: <answer>` (no trailing newline)."""
        return "\n".join([*self.steps, f"{ANSWER_PREFIX} {self.answer}"])

    @property
    def value(self) -> float | None:
        """The answer as a number, or None where it does not parse as one."""
        return answer_value(self.answer)


def answer_text(value: float) -> str:
    """How a trace writes a numeric answer (raykd's number formatting: 7, 2.5, 0.333333)."""
    return format_number(value)


def answer_value(text: str) -> float | None:
    try:
        return parse_answer(text)
    except (ValueError, TypeError):
        return None


def parse_trace(text: str) -> Trace | None:
    """The trace in `text` up to and including its first answer line; None if it has none."""
    steps: list[str] = []
    for line in text.splitlines():
        match = _ANSWER_LINE.match(line)
        if match:
            return Trace(tuple(steps), match.group(1).strip())
        if line.strip():
            steps.append(line.strip())
    return None


def cut_at_answer(text: str) -> str:
    """`text` up to the end of its first answer line (all of it where there is none)."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if _ANSWER_LINE.match(line):
            return "\n".join(lines[: i + 1])
    return text
