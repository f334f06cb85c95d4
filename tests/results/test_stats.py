"""Accuracy statistics against hand-computed values: Wilson intervals, exact McNemar, bit packing."""

from __future__ import annotations

import math

import pytest

from raykd.stats import (
    accuracy_fields,
    accuracy_interval,
    mcnemar_exact,
    pack_correct,
    unpack_correct,
    wilson_interval,
)


def _wilson_by_hand(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize("k, n", [(7, 10), (0, 10), (10, 10), (61, 81), (92, 122)])
def test_wilson_interval_matches_the_formula(k, n):
    assert wilson_interval(k, n) == pytest.approx(_wilson_by_hand(k, n), abs=1e-12)


def test_wilson_interval_of_seven_in_ten_is_the_textbook_value():
    low, high = wilson_interval(7, 10)
    assert low == pytest.approx(0.3968, abs=1e-4) and high == pytest.approx(0.8922, abs=1e-4)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_exact_mcnemar_uses_only_the_discordant_problems():
    # teacher right / student wrong on 1 problem, the reverse on 7, 92 ties either way
    teacher = [True] * 1 + [False] * 7 + [True] * 50 + [False] * 42
    student = [False] * 1 + [True] * 7 + [True] * 50 + [False] * 42
    test = mcnemar_exact(teacher, student)
    assert (test.a_only, test.b_only, test.n) == (1, 7, 100)
    assert test.p_value == pytest.approx(2 * (1 + 8) / 2**8)  # 2 * P(X <= 1), X ~ Bin(8, 1/2) = 0.0703125
    assert test.accuracy_diff == pytest.approx(0.06) and not test.significant(0.05)
    assert mcnemar_exact([True, False], [True, False]).p_value == 1.0  # no discordant pair
    with pytest.raises(ValueError, match="same problems"):
        mcnemar_exact([True], [True, False])


def test_a_drop_on_many_problems_is_significant_where_the_same_drop_on_few_is_not():
    few = mcnemar_exact([True] * 4 + [False] * 6, [False] * 4 + [False] * 6)  # 4 lost of 10
    many = mcnemar_exact([True] * 40 + [False] * 60, [False] * 40 + [False] * 60)  # 40 lost of 100
    assert few.p_value == pytest.approx(2 / 2**4) and many.p_value < 1e-10


@pytest.mark.parametrize("flags", [[], [True], [False], [False, False, True], [True, False] * 37 + [False] * 9])
def test_per_problem_bits_round_trip(flags):
    assert unpack_correct(pack_correct(flags), len(flags)) == flags


def test_accuracy_fields_pair_a_model_with_its_teacher():
    teacher = [True] * 6 + [False] * 4
    student = [True] * 3 + [False] * 7
    t = {**accuracy_interval(teacher), "correct_bits": pack_correct(teacher)}
    s = {**accuracy_interval(student), "correct_bits": pack_correct(student)}
    out = accuracy_fields("accuracy", s, t)
    assert out["accuracy_n"] == 10 and out["accuracy_lost"] == 3 and out["accuracy_gained"] == 0
    assert out["accuracy_p_vs_teacher"] == pytest.approx(0.25)
    assert (out["accuracy_ci_low"], out["accuracy_ci_high"]) == pytest.approx(_wilson_by_hand(3, 10))
    other_split = {**accuracy_interval(student[:9]), "correct_bits": pack_correct(student[:9])}
    assert "accuracy_p_vs_teacher" not in accuracy_fields("accuracy", other_split, t)  # never paired across sizes
