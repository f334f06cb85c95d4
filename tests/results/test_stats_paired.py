"""The paired accuracy difference (student - teacher) with Newcombe's interval and the
non-inferiority verdict, against published and hand-computed values."""

from __future__ import annotations

import math

import pytest

from raykd.stats import (
    PairedDifference,
    accuracy_fields,
    accuracy_interval,
    margin_from_points,
    pack_correct,
    paired_difference,
)

Z95 = 1.959963984540054


def _pairs(both: int, student_only: int, teacher_only: int, neither: int) -> tuple[list[bool], list[bool]]:
    """(teacher, student) flags of a paired 2x2 table."""
    teacher = [True] * both + [False] * student_only + [True] * teacher_only + [False] * neither
    student = [True] * both + [True] * student_only + [False] * teacher_only + [False] * neither
    return teacher, student


def _wilson(k: int, n: int) -> tuple[float, float]:
    p = k / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 / (1 + Z95**2 / n) * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n))
    return centre - half, centre + half


def _newcombe_by_hand(a: int, b: int, c: int, d: int) -> tuple[float, float]:
    """Newcombe (1998) method 10 written out from the paper's formulas, independently of the module."""
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    (l1, u1), (l2, u2) = _wilson(a + b, n), _wilson(a + c, n)
    big_a = a * d - b * c
    if big_a > n / 2:
        phi = (big_a - n / 2) / math.sqrt((a + b) * (c + d) * (a + c) * (b + d))
    elif big_a >= 0:
        phi = 0.0
    else:
        phi = big_a / math.sqrt((a + b) * (c + d) * (a + c) * (b + d))
    delta = math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    eps = math.sqrt((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2)
    return p1 - p2 - delta, p1 - p2 + eps


def test_newcombe_1998_table_ii_worked_example():
    # Newcombe (1998), Stat Med 17:2635, Table II example: a=36, b=12, c=2, d=0 (n=50), theta = 0.2,
    # method 10: 0.0569 to 0.3404. b = first (here: student) only, c = second (teacher) only.
    teacher, student = _pairs(36, 12, 2, 0)
    diff = paired_difference(teacher, student)
    assert diff.difference == pytest.approx(0.2)
    assert (diff.low, diff.high) == pytest.approx((0.0569, 0.3404), abs=5e-5)
    assert diff.n == 50 and diff.method == "newcombe-hybrid-score"


def test_fagerland_2014_cavo_example():
    # Fagerland, Lydersen & Laake (2014) / "Statistical Analysis of Contingency Tables" ch. 8, Cavo et
    # al. (2012) data [[59, 6], [16, 80]]: Newcombe square-and-add -0.0621 (95% CI -0.1186 to -0.0046).
    teacher, student = _pairs(59, 6, 16, 80)
    diff = paired_difference(teacher, student)
    assert diff.difference == pytest.approx(-0.0621, abs=5e-5)
    assert (diff.low, diff.high) == pytest.approx((-0.1186, -0.0046), abs=5e-5)


@pytest.mark.parametrize("table", [
    (40, 3, 9, 48),      # ad - bc > n/2: the corrected correlation is positive
    (10, 5, 5, 1),       # 0 <= ad - bc <= n/2: correlation set to 0
    (1, 1, 7, 12),       # Bentur et al. (2009): ad - bc = 5 <= n/2
    (5, 20, 25, 2),      # ad - bc < 0: negative correlation kept
    (700, 40, 120, 240),  # ASDiv-A-sized: 1,100 pooled problems
])
def test_interval_matches_the_formula_by_hand(table):
    teacher, student = _pairs(*table)
    diff = paired_difference(teacher, student)
    assert (diff.low, diff.high) == pytest.approx(_newcombe_by_hand(*table), abs=1e-12)
    assert diff.low < diff.difference < diff.high


def test_orientation_is_student_minus_teacher_and_p_is_exact_mcnemar():
    teacher, student = _pairs(50, 1, 7, 42)  # student loses 7, gains 1
    diff = paired_difference(teacher, student)
    assert diff.difference == pytest.approx(-0.06)
    assert diff.p_value == pytest.approx(2 * (1 + 8) / 2**8)
    swapped = paired_difference(student, teacher)
    assert swapped.difference == pytest.approx(0.06)
    assert (swapped.low, swapped.high) == pytest.approx((-diff.high, -diff.low), abs=1e-12)


def test_identical_models_have_zero_difference_and_a_two_sided_interval():
    flags = [True] * 80 + [False] * 20
    diff = paired_difference(flags, flags)
    assert diff.difference == 0 and diff.p_value == 1.0
    assert -0.05 < diff.low < 0 < diff.high < 0.05
    assert diff.non_inferior(0.05)
    all_wrong = paired_difference([False] * 10, [False] * 10)  # every margin total but one is 0: phi = 0
    assert all_wrong.difference == 0 and all_wrong.low < 0 < all_wrong.high


def test_non_inferiority_reads_the_lower_bound_against_the_margin_in_proportion_units():
    teacher, student = _pairs(700, 40, 50, 310)  # -1 point on 1,100 problems
    diff = paired_difference(teacher, student)
    assert -0.03 < diff.low < -0.02  # -2.6 points
    assert diff.non_inferior(0.03) and not diff.non_inferior(0.02)
    assert diff.non_inferior(margin_from_points(3)) and not diff.non_inferior(margin_from_points(2))
    with pytest.raises(ValueError, match="proportion"):
        diff.non_inferior(2)  # points passed as a proportion would call everything non-inferior
    with pytest.raises(ValueError):
        diff.non_inferior(-0.01)
    with pytest.raises(ValueError):
        margin_from_points(float("nan"))


def test_a_large_drop_on_few_problems_is_neither_significant_nor_non_inferior():
    # the case: a 9-point drop on 122 problems is "not significant" (lack of power), and the
    # interval shows it: far from non-inferior at 2 points.
    teacher, student = _pairs(70, 6, 17, 29)
    diff = paired_difference(teacher, student)
    assert diff.difference == pytest.approx(-11 / 122)
    assert diff.p_value > 0.03 and diff.low < -0.15
    assert not diff.non_inferior(0.02)


def test_hand_made_non_inferior_verdict():
    # 1,000 problems, 10 lost, 12 gained: lower bound just above -1.2 points
    teacher, student = _pairs(780, 12, 10, 198)
    diff = paired_difference(teacher, student)
    low, _ = _newcombe_by_hand(780, 12, 10, 198)
    assert diff.low == pytest.approx(low) and -0.02 < low < 0
    assert diff.non_inferior(0.02) and not diff.non_inferior(-low - 1e-6)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="same problems"):
        paired_difference([True], [True, False])
    with pytest.raises(ValueError, match="no problems"):
        paired_difference([], [])
    with pytest.raises(ValueError, match="confidence"):
        paired_difference([True], [True], confidence=1.5)


def test_confidence_level_widens_the_interval():
    teacher, student = _pairs(60, 5, 12, 23)
    d95, d99 = paired_difference(teacher, student), paired_difference(teacher, student, confidence=0.99)
    assert d99.low < d95.low < d95.difference < d95.high < d99.high
    assert isinstance(d95, PairedDifference) and d95.to_dict()["confidence"] == 0.95


def test_accuracy_fields_carry_the_paired_difference_columns():
    teacher, student = _pairs(60, 5, 12, 23)
    t = {**accuracy_interval(teacher), "correct_bits": pack_correct(teacher)}
    s = {**accuracy_interval(student), "correct_bits": pack_correct(student)}
    out = accuracy_fields("accuracy", s, t)
    diff = paired_difference(teacher, student)
    assert out["accuracy_diff"] == pytest.approx(-0.07)
    assert (out["accuracy_diff_low"], out["accuracy_diff_high"]) == (diff.low, diff.high)
    assert out["accuracy_p_vs_teacher"] == diff.p_value
    short = {**accuracy_interval(student[:9]), "correct_bits": pack_correct(student[:9])}
    assert "accuracy_diff" not in accuracy_fields("accuracy", short, t)  # never paired across sizes
    assert "accuracy_diff" not in accuracy_fields("accuracy", s, None)
