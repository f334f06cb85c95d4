"""How sure an accuracy is: Wilson intervals, per-problem correctness, paired exact McNemar tests.

An accuracy on 81 or 122 problems is uncertain by several points, and two models evaluated on the
same problems are compared far more sharply by the problems on which they disagree than by their
two accuracies. So every evaluation keeps its per-problem correctness (`pack_correct`: a hex bit
string in the split's problem order, compact enough for a Parquet cell or a JSON record), and:

- `wilson_interval(k, n)`: the 95% Wilson score interval (scipy's
  `binomtest(k, n).proportion_ci(method="wilson")`);
- `mcnemar_exact(a, b)`: the exact McNemar test of two models on the same problems: a two-sided
  binomial test (p = 1/2) on the discordant pairs only;
- `paired_difference(teacher, student)`: the student's accuracy minus the teacher's on the same
  problems, with Newcombe's hybrid score interval for paired proportions, the exact McNemar p and a
  non-inferiority verdict (`PairedDifference.non_inferior(margin)`). The p-value alone cannot say
  "no loss": a small n gives a large p for a real drop; the interval's lower bound can.

No Ray, no torch (scipy only): used by the task, the chain, the results store and notebooks alike,
so it sits at the bottom of the layers (docs/architecture.md), below everything that evaluates a model.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

CONFIDENCE = 0.95


def wilson_interval(correct: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of `correct` successes in `n` trials; (nan, nan) when n == 0."""
    if n == 0:
        return (math.nan, math.nan)
    from scipy.stats import binomtest  # deferred: scipy.stats takes ~0.8 s to import, and `raykd --help` needs none of it

    ci = binomtest(int(correct), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def accuracy_interval(flags: Sequence[bool], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """{"accuracy", "n", "ci_low", "ci_high"} of per-problem correctness flags."""
    n, k = len(flags), int(sum(bool(f) for f in flags))
    low, high = wilson_interval(k, n, confidence)
    return {"accuracy": k / n if n else 0.0, "n": n, "ci_low": low, "ci_high": high}


def pack_correct(flags: Sequence[bool]) -> str:
    """Per-problem correctness as hex (bit i of the big-endian bit string = problem i); `n` is kept
    beside it, since leading zeros are not."""
    value = 0
    for flag in flags:
        value = (value << 1) | int(bool(flag))
    width = max(1, math.ceil(len(flags) / 4))
    return format(value, f"0{width}x")


def unpack_correct(hexbits: str, n: int) -> list[bool]:
    value = int(hexbits, 16) if hexbits else 0
    if value >> n:
        raise ValueError(f"{len(hexbits)} hex digits hold more than {n} problems")
    return [bool((value >> (n - 1 - i)) & 1) for i in range(n)]


@dataclass(frozen=True)
class PairedTest:
    """Exact McNemar test of model B against model A on the same problems."""

    n: int
    a_only: int  # problems A solves and B does not
    b_only: int  # problems B solves and A does not
    p_value: float
    accuracy_diff: float  # (acc_B - acc_A), in accuracy units

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def significant(self, level: float = 0.05) -> bool:
        return self.p_value < level


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> PairedTest:
    """The exact McNemar test: under "A and B are equally accurate", each discordant problem is
    equally likely to favour either, so a_only ~ Binomial(a_only + b_only, 1/2), two-sided."""
    if len(a) != len(b):
        raise ValueError(f"paired test needs the same problems: {len(a)} vs {len(b)} results")
    a_only = sum(1 for x, y in zip(a, b) if x and not y)
    b_only = sum(1 for x, y in zip(a, b) if y and not x)
    discordant = a_only + b_only
    if discordant == 0:
        p = 1.0
    else:
        from scipy.stats import binomtest

        p = float(binomtest(a_only, discordant, 0.5, alternative="two-sided").pvalue)
    n = len(a)
    return PairedTest(n, a_only, b_only, p, (b_only - a_only) / n if n else 0.0)


def format_accuracy(metrics: dict[str, Any]) -> str:
    """'0.7541 (95% CI 0.6701-0.8223, n 122)' from metrics holding accuracy, n and the interval."""
    acc, n = metrics.get("accuracy"), metrics.get("n")
    low, high = metrics.get("ci_low"), metrics.get("ci_high")
    if acc is None:
        return "–"
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return f"{acc:.4f} (n {n})"
    return f"{acc:.4f} (95% CI {low:.4f}-{high:.4f}, n {n})"


def accuracy_fields(prefix: str, metrics: dict[str, Any], teacher: dict[str, Any] | None) -> dict[str, Any]:
    """Flat record fields for one split's accuracy: `<prefix>_n`, `<prefix>_ci_low/high`, the
    per-problem bits `<prefix>_correct` and, against the teacher's bits on the same problems, the
    exact McNemar `<prefix>_p_vs_teacher` with `<prefix>_lost` (teacher right, model wrong) and
    `<prefix>_gained`, and the paired difference (model - teacher, proportion units) with its
    Newcombe interval: `<prefix>_diff`, `<prefix>_diff_low`, `<prefix>_diff_high`."""
    out: dict[str, Any] = {f"{prefix}_n": metrics.get("n"), f"{prefix}_ci_low": metrics.get("ci_low"),
                           f"{prefix}_ci_high": metrics.get("ci_high"), f"{prefix}_correct": metrics.get("correct_bits")}
    bits, n = metrics.get("correct_bits"), metrics.get("n")
    if teacher and bits is not None and teacher.get("correct_bits") is not None and teacher.get("n") == n:
        teacher_flags, flags = unpack_correct(teacher["correct_bits"], n), unpack_correct(bits, n)
        test = mcnemar_exact(teacher_flags, flags)
        out.update({f"{prefix}_p_vs_teacher": test.p_value, f"{prefix}_lost": test.a_only, f"{prefix}_gained": test.b_only})
        if n:
            diff = paired_difference(teacher_flags, flags)
            out.update({f"{prefix}_diff": diff.difference, f"{prefix}_diff_low": diff.low, f"{prefix}_diff_high": diff.high})
    return out


PAIRED_METHOD = "newcombe-hybrid-score"


@dataclass(frozen=True)
class PairedDifference:
    """Student minus teacher accuracy on the same n problems, in proportion units (-0.02 = the
    student solves 2 points fewer), with its interval (`low`, `high`, same units) and the exact
    McNemar p of the same pairs."""

    difference: float
    low: float
    high: float
    p_value: float
    n: int
    method: str
    confidence: float = CONFIDENCE

    def non_inferior(self, margin: float) -> bool:
        """True when the interval's lower bound is above -margin: the student is shown "not worse
        than the teacher by more than `margin`". `margin` is in PROPORTION units, like `difference`:
        0.02 for "2 points" (use `margin_from_points(2)`); a value >= 1 is refused, since it is
        almost surely points passed as a proportion, which would call every student non-inferior."""
        return self.low > -check_margin(margin)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_margin(margin: float) -> float:
    """A non-inferiority margin in proportion units: finite, 0 <= margin < 1."""
    m = float(margin)
    if not math.isfinite(m) or not 0 <= m < 1:
        raise ValueError(f"non-inferiority margin must be a proportion in [0, 1) (0.02 = 2 points), got {margin!r}")
    return m


def margin_from_points(points: float) -> float:
    """A margin given in accuracy points (2 = 2 points) as a proportion (0.02)."""
    p = float(points)
    if not math.isfinite(p) or not 0 <= p < 100:
        raise ValueError(f"non-inferiority margin must be points in [0, 100), got {points!r}")
    return p / 100


def paired_difference(teacher: Sequence[bool], student: Sequence[bool], confidence: float = CONFIDENCE) -> PairedDifference:
    """Student minus teacher accuracy over the same problems with Newcombe's hybrid score interval
    for paired proportions (Newcombe 1998, "Improved confidence intervals for the difference between
    binomial proportions based on paired data", Stat Med 17:2635-2650, method 10; as given by
    Fagerland, Lydersen & Laake 2014, Stat Med 33:2850-2875, who recommend it):

        2x2 table: a both right, b student only, c teacher only, d both wrong; N = a + b + c + d
        p1 = (a + b)/N (student), p2 = (a + c)/N (teacher), D = p1 - p2
        (l1, u1), (l2, u2): the Wilson score intervals of p1 and p2
        phi = C / sqrt((a+b)(c+d)(a+c)(b+d)), with A = ad - bc and C = A - N/2 if A > N/2,
              0 if 0 <= A <= N/2, A if A < 0; phi = 0 when a margin total is 0
        L = D - sqrt((p1 - l1)^2 + (u2 - p2)^2 - 2 phi (p1 - l1)(u2 - p2))
        U = D + sqrt((p2 - l2)^2 + (u1 - p1)^2 - 2 phi (p2 - l2)(u1 - p1))

    Closed form from two Wilson intervals (scipy), no root finding; its coverage is close to
    nominal down to small n (Newcombe 1998; Fagerland et al. 2014). Tested against the published
    examples (Newcombe 1998 Table II; Fagerland et al. 2014's Cavo et al. data)."""
    if len(teacher) != len(student):
        raise ValueError(f"paired difference needs the same problems: {len(teacher)} vs {len(student)} results")
    if not len(teacher):
        raise ValueError("paired difference of no problems")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    pairs = [(bool(s), bool(t)) for t, s in zip(teacher, student)]
    a = sum(1 for s, t in pairs if s and t)
    b = sum(1 for s, t in pairs if s and not t)
    c = sum(1 for s, t in pairs if t and not s)
    d = len(pairs) - a - b - c
    low, high = newcombe_paired_interval(a, b, c, d, confidence)
    test = mcnemar_exact(teacher, student)
    return PairedDifference((b - c) / len(pairs), low, high, test.p_value, len(pairs), PAIRED_METHOD, confidence)


def newcombe_paired_interval(a: int, b: int, c: int, d: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Newcombe's method-10 interval for (a + b)/N - (a + c)/N of a paired 2x2 table (see
    `paired_difference`); clipped to [-1, 1]."""
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson_interval(a + b, n, confidence)
    l2, u2 = wilson_interval(a + c, n, confidence)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    phi = 0.0
    if margins:
        cross = a * d - b * c
        corrected = cross - n / 2 if cross > n / 2 else (0.0 if cross >= 0 else cross)
        phi = corrected / math.sqrt(margins)
    diff = p1 - p2
    low = diff - math.sqrt(max(0.0, (p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2)))
    high = diff + math.sqrt(max(0.0, (p2 - l2) ** 2 + (u1 - p1) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1)))
    return (max(-1.0, low), min(1.0, high))
