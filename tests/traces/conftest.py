"""Fixtures for the trace tests: hand-made problems, and the real ASDiv-A train set (skipped if absent)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from raykd.data.problem import Problem

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def make_problem(numbers: tuple[float, ...], equation: tuple[str, ...], answer: float, *, text: str = "",
                 answer_text: str = "", post_op: str | None = None, pid: str = "p0") -> Problem:
    """A problem whose numbers are written in `text` as digits, in order (spans computed)."""
    if not text:
        text = " ".join(f"There are {n:g} things." for n in numbers) + " How many?"
    spans, pos = [], 0
    for n in numbers:
        start = text.index(f"{n:g}", pos)
        spans.append((start, start + len(f"{n:g}")))
        pos = spans[-1][1]
    return Problem(id=pid, text=text, numbers=numbers, number_spans=tuple(spans), equation=equation, answer=answer,
                   complexity="simple", source="test", answer_text=answer_text, meta={"post_op": post_op})


@pytest.fixture
def problem() -> Callable[..., Problem]:
    return make_problem


@pytest.fixture(scope="session")
def asdiv_train() -> list[Any]:
    """The 974 ASDiv-A train problems from ../shared/data."""
    from raykd.data.readers import load_problems

    path = SHARED_DATA / "asdiv-a" / "train.json"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return load_problems(f"asdiv-a:{path}").problems
