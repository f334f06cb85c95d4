"""k-fold cross-validation folds: deterministic from a seed, stratified by a key, an exact partition.

A 122-problem test set cannot tell a 2-point loss from none; k-fold CV evaluates every problem of
train + valid exactly once (by the fold's models, trained on the other folds), so teacher and student
are paired over ~1,100 ASDiv-A problems instead. The MWP literature's protocol is 5-fold on ASDiv-A
and MAWPS. Folds are stratified by the number of operations in the gold equation, so each fold sees
the same mix of one-, two- and more-step problems.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

from raykd.data.problem import OPERATORS, Problem
from raykd.data.splits import stratified_split

T = TypeVar("T")


def operation_count(problem: Problem) -> int:
    """Operators in the gold (prefix) equation: ASDiv-A's natural stratum."""
    return sum(1 for token in problem.equation if token in OPERATORS)


def kfold(items: Sequence[T], k: int, *, seed: int = 0, key: Callable[[T], Hashable] | None = None) -> list[list[T]]:
    """Partition `items` into `k` folds: each key's items shuffled with `random.Random(seed)` and dealt
    round-robin, the deal continuing from stratum to stratum, so fold sizes differ by at most one and
    each stratum's count per fold by at most one. Same items and seed, same folds; every item in
    exactly one fold, in input order within a fold."""
    if not isinstance(k, int) or k < 2:
        raise ValueError(f"k-fold needs k >= 2 folds, got {k!r}")
    if len(items) < k:
        raise ValueError(f"{k} folds need at least {k} problems, got {len(items)}")
    rng = random.Random(seed)
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        groups[key(item) if key else 0].append(i)
    fold_of = [0] * len(items)
    position = rng.randrange(k)  # where the deal starts: a seed moves small strata between folds too
    for group_key in sorted(groups, key=repr):
        members = groups[group_key]
        rng.shuffle(members)
        for i in members:
            fold_of[i] = position % k
            position += 1
    return [[item for i, item in enumerate(items) if fold_of[i] == f] for f in range(k)]


def fold_splits(problems: Sequence[Problem], k: int, fold: int, *, seed: int = 0,
                valid_fraction: float = 0.1) -> dict[str, list[Problem]]:
    """The splits of fold `fold` (0-based): "test" = that fold (held out, evaluated once), "train" and
    "valid" = the other folds, with `valid_fraction` of them (stratified, seeded) kept for early
    stopping and the chain's per-round selection, so the held-out fold never steers training."""
    if not 0 <= fold < k:
        raise ValueError(f"fold must be in [0, {k}), got {fold}")
    if not 0 < valid_fraction < 1:
        raise ValueError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    folds = kfold(problems, k, seed=seed, key=operation_count)
    rest = [p for f, part in enumerate(folds) if f != fold for p in part]
    train, valid = stratified_split(rest, (1 - valid_fraction, valid_fraction), key=operation_count, seed=seed + 1000 * (fold + 1))
    return {"train": train, "valid": valid, "test": list(folds[fold])}
