"""Progressive pruning schedule (Eq. 5 of the paper).

p_t = p_min + (p_max - p_min) * (t / T)^n for t = 1..T. At stage t, floor(p_t * h) units (heads,
FFN channels or layers) are removed *in all* (cumulative, h = the original unit count of the pool
being pruned: `units_removed_by`), so each stage removes the difference with the previous one.
n > 1 back-loads the pruning, n < 1 front-loads it.

p_min is the schedule's start (t = 0), not the first stage's ratio: stage 1 reaches
p_min + (p_max - p_min) * (1/T)^n, which is p_min only when p_min = p_max (and p_max when T = 1).
A sweep searches it as `p_min_fraction` (p_min = p_min_fraction * p_max: `raykd.search.space`).
"""

from __future__ import annotations

import math

from raykd.errors import ConfigError


def pruning_ratio(t: int, total: int, p_min: float, p_max: float, n: float) -> float:
    """p_t for stage t of `total` (t = 0 gives p_min, the start no stage ends at unless p_min = p_max)."""
    if total < 1 or not 0 <= t <= total:
        raise ConfigError(f"stage {t} is outside 0..{total}")
    if not 0.0 <= p_min <= p_max < 1.0:
        raise ConfigError(f"need 0 <= p_min <= p_max < 1, got p_min={p_min}, p_max={p_max}")
    if n <= 0:
        raise ConfigError(f"schedule exponent n must be > 0, got {n}")
    return p_min + (p_max - p_min) * (t / total) ** n


def ratios(total: int, p_min: float, p_max: float, n: float) -> list[float]:
    """[p_1, ..., p_T]: the cumulative ratio reached after each stage."""
    return [pruning_ratio(t, total, p_min, p_max, n) for t in range(1, total + 1)]


def units_removed_by(ratio: float, units: int) -> int:
    """How many of `units` (heads, FFN channels or layers of a pool) are gone at a cumulative
    `ratio`: floor(ratio * units), robust to float noise (0.3 * 10 is 2.9999999999999996)."""
    return int(math.floor(ratio * units + 1e-9))


def delayed_ratio(t: int, total: int, start: int, p_min: float, p_max: float, n: float) -> float:
    """The Eq. 5 ratio of a schedule that begins at stage `start` (1-based): 0 before it, then
    Eq. 5 over the stages start..total, so stage `total` reaches p_max. start = 1 is `pruning_ratio`
    itself (the same arithmetic, so the same floats)."""
    if not 1 <= start <= total:
        raise ConfigError(f"schedule start {start} is outside 1..{total}")
    if t < start:
        return 0.0
    return pruning_ratio(t - start + 1, total - start + 1, p_min, p_max, n)


def step_fractions(cumulative: list[float]) -> list[float]:
    """The fraction of what was still there that each stage removes, from the cumulative ratios
    [p_1, ..., p_T] (the model starts whole: p_0 = 0): (p_t - p_(t-1)) / (1 - p_(t-1))."""
    out, before = [], 0.0
    for p in cumulative:
        out.append((p - before) / (1.0 - before))
        before = p
    return out


def fewest_rounds(p_max: float, max_step: float) -> int:
    """The fewest rounds R for which a linear schedule (p_min = 0, n = 1) to `p_max` never removes
    more than `max_step` of what remains in one round: its last round removes the largest fraction,
    p / (R - (R - 1) p), so R >= p (1 - m) / (m (1 - p))."""
    if not 0 < max_step <= 1 or not 0 <= p_max < 1:
        raise ConfigError(f"need 0 < max_step <= 1 and 0 <= p_max < 1, got {max_step}, {p_max}")
    return max(1, math.ceil(p_max * (1 - max_step) / (max_step * (1 - p_max)) - 1e-9))
