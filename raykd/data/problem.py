"""The one record every reader produces and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OPERATORS: tuple[str, ...] = ("+", "-", "*", "/", "^")
"""Binary operators of the expression language, in vocabulary order."""

COMPLEXITY_LEVELS: tuple[str, ...] = ("simple", "medium", "complex")


@dataclass(frozen=True)
class Problem:
    """One math word problem, with its numbers masked as placeholders N0..Nk.

    `text` is the problem as written (body + question), numbers left in place so a pretrained
    encoder sees their values; `number_spans[k]` is the character span of the k-th number in
    `text` (the one the placeholder `Nk` stands for), `numbers[k]` its value. `equation` is the
    gold expression in prefix form over operators, placeholders (`"N0"`, ...) and constant
    tokens (`"1"`, `"100"`, `"3.14"`, ... : numbers used by the equation that are not in the
    text). `answer` is the gold value as a float.
    """

    id: str
    text: str
    numbers: tuple[float, ...]
    number_spans: tuple[tuple[int, int], ...]
    equation: tuple[str, ...]
    answer: float
    complexity: str
    source: str = ""
    answer_text: str = ""
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if len(self.numbers) != len(self.number_spans):
            raise ValueError(f"problem {self.id}: {len(self.numbers)} numbers but {len(self.number_spans)} spans")
        if self.complexity not in COMPLEXITY_LEVELS:
            raise ValueError(f"problem {self.id}: unknown complexity {self.complexity!r}")
