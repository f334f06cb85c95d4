"""Seeded splits stratified by a key (the complexity level), so every split sees every level."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

from raykd.errors import DataError

T = TypeVar("T")

SPLIT_NAMES: tuple[str, str, str] = ("train", "valid", "test")
SPLIT_RATIOS: dict[str, tuple[float, float, float]] = {
    "math23k": (0.7, 0.1, 0.2),
    "asdiv-a": (0.8, 0.1, 0.1),
    "default": (0.8, 0.1, 0.1),
}
"""train:valid:test ratios by data set (method.md section 4); anything not named uses "default"."""


def ratios_for(source: str) -> tuple[float, float, float]:
    return SPLIT_RATIOS.get(source, SPLIT_RATIOS["default"])


def _allocate(n: int, ratios: Sequence[float]) -> list[int]:
    """Split n into parts proportional to ratios, largest remainders first (ties: earlier part)."""
    total = sum(ratios)
    exact = [n * r / total for r in ratios]
    counts = [math.floor(x) for x in exact]
    order = sorted(range(len(ratios)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def stratified_split(
    items: Sequence[T], ratios: Sequence[float], *, key: Callable[[T], Hashable], seed: int = 0
) -> list[list[T]]:
    """Partition `items` into len(ratios) lists with each key's items split in those ratios
    (largest remainder per key), shuffled with `random.Random(seed)`: same seed, same split."""
    if not ratios or any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise ValueError(f"invalid split ratios {tuple(ratios)}")
    rng = random.Random(seed)
    groups: dict[Hashable, list[T]] = defaultdict(list)
    for item in items:
        groups[key(item)].append(item)
    parts: list[list[T]] = [[] for _ in ratios]
    for group_key in sorted(groups, key=repr):
        group = groups[group_key]
        rng.shuffle(group)
        start = 0
        for part, count in zip(parts, _allocate(len(group), ratios), strict=True):
            part.extend(group[start : start + count])
            start += count
    for part in parts:
        rng.shuffle(part)
    return parts


def require_splits(splits: dict[str, Sequence[object]], spec: str, names: Sequence[str], *, why: str) -> None:
    """DataError (exit 2, before any training) when a split a run needs has no problems."""
    empty = [n for n in names if not splits.get(n)]
    if empty:
        raise DataError(f"{spec} gives no {' and no '.join(empty)} problems ({why}): "
                        "add the split file or use more data")
