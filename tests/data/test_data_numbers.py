from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raykd.data.numbers import extract_numbers, format_number, number_to_words


def found(text: str, language: str = "en") -> list[tuple[float, str]]:
    return [(n.value, text[n.span[0] : n.span[1]]) for n in extract_numbers(text, language=language)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("He has 1,200 marbles and 3.5 kg of sand.", [(1200.0, "1,200"), (3.5, "3.5")]),
        ("Each ball costs $1.54 and a bat $60.00.", [(1.54, "1.54"), (60.0, "60.00")]),
        ("Add .5 cup of milk.", [(0.5, ".5")]),
        ("Use 3/4 cup of flour and 1 1/2 cups of sugar.", [(0.75, "3/4"), (1.5, "1 1/2")]),
        ("A 25% discount, then 12 % more.", [(25.0, "25%"), (12.0, "12 %")]),
        ("He gave five to his brother and fifty-eight to his sister.", [(5.0, "five"), (58.0, "fifty-eight")]),
        (
            "There were a hundred and five birds and one hundred twenty fish.",
            [(105.0, "a hundred and five"), (120.0, "one hundred twenty")],
        ),
        (
            "Twenty five cats and two thousand five hundred dogs.",
            [(25.0, "Twenty five"), (2500.0, "two thousand five hundred")],
        ),
        ("Sixty-Five were sold.", [(65.0, "Sixty-Five")]),
        ("One of them left.", [(1.0, "One")]),
        ("five and seven", [(5.0, "five"), (7.0, "seven")]),
        ("five seven", [(5.0, "five"), (7.0, "seven")]),
    ],
)
def test_english_numbers(text: str, expected: list[tuple[float, str]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "No one came to the party.",
        "She ate half of the cake and a dozen eggs twice.",
        "He finished 3rd, then 1st, then 22nd and 4th.",
        "Someone and anyone and everyone.",
        "The first and second runners.",
    ],
)
def test_english_non_numbers(text: str) -> None:
    assert found(text) == []


def test_spans_are_exact_and_ordered() -> None:
    text = "Tom has four apples, 12 pears and fifty-eight grapes."
    numbers = extract_numbers(text)
    assert [n.value for n in numbers] == [4.0, 12.0, 58.0]
    assert [text[a:b] for a, b in (n.span for n in numbers)] == ["four", "12", "fifty-eight"]
    assert [n.span for n in numbers] == sorted(n.span for n in numbers)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("一共有280kg水果糖，每袋装(1/4)kg，装完了(3/4)．", [(280.0, "280"), (0.25, "(1/4)"), (0.75, "(3/4)")]),
        ("一块地1(5/6)公顷，用了（2/5）", [(1 + 5 / 6, "1(5/6)"), (0.4, "（2/5）")]),
        ("卖出30%后又卖出12.5%", [(0.3, "30%"), (0.125, "12.5%")]),
        ("46/580-74的差", [(46.0, "46"), (580.0, "580"), (74.0, "74")]),
        ("比例是3：4，一共有五个", [(3.0, "3"), (4.0, "4")]),
    ],
)
def test_chinese_numbers(text: str, expected: list[tuple[float, str]]) -> None:
    assert found(text, "zh") == expected


def test_chinese_has_no_number_words_or_bare_fractions() -> None:
    assert found("five 3/4", "zh") == [(3.0, "3"), (4.0, "4")]


@given(st.integers(min_value=0, max_value=10**12 - 1))
def test_number_words_round_trip(n: int) -> None:
    words = number_to_words(n)
    assert found(f"He saw {words} birds.") == [(float(n), words)]


@given(st.integers(min_value=0, max_value=10**9))
def test_digits_with_commas_round_trip(n: int) -> None:
    text = f"It cost {n:,} dollars."
    assert found(text) == [(float(n), f"{n:,}")]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (3.14, "3.14"),
        (0.5, "0.5"),
        (-2.5, "-2.5"),
        (100.0, "100"),
        (1e-7, "0.0000001"),
        (1e20, "100000000000000000000"),
    ],
)
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text


def test_number_to_words_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        number_to_words(-1)
