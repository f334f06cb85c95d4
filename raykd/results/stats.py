"""How sure an accuracy is: Wilson intervals, per-problem correctness, paired exact McNemar tests.

An accuracy on 81 or 122 problems is uncertain by several points, and two models evaluated on the
same problems are compared far more sharply by the problems on which they disagree than by their
two accuracies. So every evaluation keeps its per-problem correctness (`pack_correct`: a hex bit
string in the split's problem order, compact enough for a Parquet cell or a JSON record), and:

- `wilson_interval(k, n)`: the 95% Wilson score interval (scipy's
  `binomtest(k, n).proportion_ci(method="wilson")`);
- `mcnemar_exact(a, b)`: the exact McNemar test of two models on the same problems: a two-sided
  binomial test (p = 1/2) on the discordant pairs only.

No Ray, no torch: used by the task, the chain, the results store and notebooks alike.
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
    from scipy.stats import binomtest

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
    `<prefix>_gained`."""
    out: dict[str, Any] = {f"{prefix}_n": metrics.get("n"), f"{prefix}_ci_low": metrics.get("ci_low"),
                           f"{prefix}_ci_high": metrics.get("ci_high"), f"{prefix}_correct": metrics.get("correct_bits")}
    bits, n = metrics.get("correct_bits"), metrics.get("n")
    if teacher and bits is not None and teacher.get("correct_bits") is not None and teacher.get("n") == n:
        test = mcnemar_exact(unpack_correct(teacher["correct_bits"], n), unpack_correct(bits, n))
        out.update({f"{prefix}_p_vs_teacher": test.p_value, f"{prefix}_lost": test.a_only, f"{prefix}_gained": test.b_only})
    return out
