from __future__ import annotations

import re
from collections import Counter

import pytest

from raykd.data.answers import equation_reproduces_answer
from raykd.data.expressions import from_prefix, operator_count
from raykd.data.numbers import extract_numbers
from raykd.data.synthetic import generate_problems


@pytest.fixture(scope="module")
def problems() -> list:
    return generate_problems(600, seed=11)


def test_deterministic_for_a_seed() -> None:
    first, again = generate_problems(40, seed=3), generate_problems(40, seed=3)
    assert first == again and [p.meta for p in first] == [p.meta for p in again]
    assert [p.text for p in generate_problems(40, seed=4)] != [p.text for p in first]
    assert generate_problems(10, seed=3) == first[:10]


def test_all_levels_evenly(problems: list) -> None:
    assert Counter(p.complexity for p in problems) == {"simple": 200, "medium": 200, "complex": 200}


def test_every_problem_is_consistent_and_well_formed(problems: list) -> None:
    for p in problems:
        assert equation_reproduces_answer(p), p
        assert 1 <= operator_count(from_prefix(p.equation)) <= 6
        assert p.answer > 0 and round(p.answer, 2) == p.answer
        assert p.source == "synthetic" and p.id.startswith("synthetic-11-")


def test_text_numbers_read_back_exactly(problems: list) -> None:
    for p in problems:
        mentions = extract_numbers(p.text)
        assert tuple(m.value for m in mentions) == p.numbers
        assert tuple(m.span for m in mentions) == p.number_spans
        assert {int(t[1:]) for t in p.equation if t.startswith("N")} == set(range(len(p.numbers)))


def test_variety(problems: list) -> None:
    operators = Counter(operator_count(from_prefix(p.equation)) for p in problems)
    assert set(operators) == {1, 2, 3, 4, 5, 6}
    assert len({p.meta["theme"] for p in problems}) == 5
    assert (
        sum(
            bool(re.search(r"\b(two|three|four|five|six|seven|eight|nine|ten|twenty|thirty)\b", p.text))
            for p in problems
        )
        > 60
    )
    assert sum(p.answer != int(p.answer) for p in problems) > 20  # prices make short decimals
    assert len({p.text for p in problems}) == len(problems)
    assert {"/", "*", "+", "-"} <= {t for p in problems for t in p.equation}
    assert any(t in ("2", "12") for p in problems for t in p.equation)  # constants absent from the text


def test_zero_and_negative_counts() -> None:
    assert generate_problems(0) == []
    with pytest.raises(ValueError):
        generate_problems(-1)
