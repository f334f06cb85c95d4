"""The solver's output vocabulary: operators, constants, and number slots N0..N(M-1).

Ids are laid out as [PAD, BOS] + operators + constants + number slots, so "is this a number
slot" is one comparison. Number slots carry no embedding of their own: the decoder reads them
from the encoder state at the number's position in the text (a pointer), which is what lets one
vocabulary serve every problem.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from raykd.data.problem import OPERATORS, Problem

PAD, BOS = "[PAD]", "[BOS]"


def slot_token(k: int) -> str:
    return f"N{k}"


def is_slot_token(token: str) -> bool:
    return len(token) > 1 and token[0] == "N" and token[1:].isdigit()


@dataclass(frozen=True)
class OutputVocab:
    """Token <-> id mapping for prefix expressions."""

    constants: tuple[str, ...]
    max_numbers: int
    operators: tuple[str, ...] = OPERATORS
    tokens: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if self.max_numbers < 1:
            raise ValueError("max_numbers must be >= 1")
        fixed = (PAD, BOS, *self.operators, *self.constants)
        object.__setattr__(self, "tokens", fixed + tuple(slot_token(k) for k in range(self.max_numbers)))
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.tokens)})

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def bos_id(self) -> int:
        return 1

    @property
    def num_fixed(self) -> int:
        """Ids below this are fixed tokens (PAD, BOS, operators, constants)."""
        return 2 + len(self.operators) + len(self.constants)

    @property
    def operator_ids(self) -> range:
        return range(2, 2 + len(self.operators))

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Token ids of a prefix expression; KeyError names the first unknown token."""
        try:
            return [self._index[t] for t in tokens]  # type: ignore[attr-defined]
        except KeyError as exc:
            raise KeyError(f"token {exc.args[0]!r} is not in the output vocabulary") from None

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[i] for i in ids]

    def can_encode(self, tokens: Sequence[str]) -> bool:
        return all(t in self._index for t in tokens)  # type: ignore[attr-defined]

    def to_dict(self) -> dict:
        return {"constants": list(self.constants), "max_numbers": self.max_numbers, "operators": list(self.operators)}

    @classmethod
    def from_dict(cls, d: dict) -> "OutputVocab":
        return cls(constants=tuple(d["constants"]), max_numbers=int(d["max_numbers"]), operators=tuple(d["operators"]))

    @classmethod
    def from_problems(cls, problems: Iterable[Problem], *, max_numbers_cap: int = 32) -> "OutputVocab":
        """Constants seen in the gold equations, most frequent first; slots for the largest count."""
        constants: Counter[str] = Counter()
        most = 1
        for p in problems:
            most = max(most, len(p.numbers))
            constants.update(t for t in p.equation if t not in OPERATORS and not is_slot_token(t))
        ordered = tuple(sorted(constants, key=lambda t: (-constants[t], t)))
        return cls(constants=ordered, max_numbers=min(most, max_numbers_cap))
