"""k-fold cross-validation folds: an exact partition, the same every run for a seed, stratified by
the number of operations, and on the real ASDiv-A train + valid (skipped where absent)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from raykd.data import load_splits
from raykd.data.folds import fold_splits, kfold, operation_count


def _pool(spec: str, seed: int = 0) -> list:
    splits = load_splits(spec, seed=seed)
    return [p for name in ("train", "valid", "test") for p in splits[name]]


@pytest.fixture(scope="module")
def synthetic():
    return _pool("synthetic:300")


def _check_partition(items, folds):
    ids = [p.id for f in folds for p in f]
    assert sorted(ids) == sorted(p.id for p in items) and len(set(ids)) == len(items)  # each problem exactly once


@pytest.mark.parametrize("k", [2, 3, 5, 10])
def test_folds_partition_the_problems_exactly_with_balanced_sizes_and_strata(synthetic, k):
    folds = kfold(synthetic, k, seed=0, key=operation_count)
    _check_partition(synthetic, folds)
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    strata = Counter(operation_count(p) for p in synthetic)
    assert len(strata) >= 3  # the synthetic data has one-, two- and more-operation problems
    for stratum in strata:
        per_fold = [sum(operation_count(p) == stratum for p in f) for f in folds]
        assert max(per_fold) - min(per_fold) <= 1, (stratum, per_fold)


def test_same_seed_same_folds_other_seed_other_folds(synthetic):
    ids = lambda folds: [[p.id for p in f] for f in folds]  # noqa: E731
    first = kfold(synthetic, 5, seed=7, key=operation_count)
    assert ids(first) == ids(kfold(list(synthetic), 5, seed=7, key=operation_count))
    assert ids(first) == ids(kfold(_pool("synthetic:300"), 5, seed=7, key=operation_count))  # a fresh load
    assert ids(first) != ids(kfold(synthetic, 5, seed=8, key=operation_count))


def test_fold_splits_hold_the_fold_out_and_keep_a_valid_part_of_the_rest(synthetic):
    tests = []
    for fold in range(5):
        s = fold_splits(synthetic, 5, fold, seed=3)
        train, valid, test = ({p.id for p in s[n]} for n in ("train", "valid", "test"))
        assert not (train & valid) and not (train & test) and not (valid & test)
        assert len(train) + len(valid) + len(test) == len(synthetic)
        assert 0.05 * len(synthetic) < len(valid) < 0.15 * len(synthetic)
        assert s == fold_splits(synthetic, 5, fold, seed=3)
        tests.append(test)
    assert sorted(i for t in tests for i in t) == sorted(p.id for p in synthetic)  # held-out folds: each problem once


@pytest.mark.parametrize("call, match", [
    (lambda items: kfold(items, 1), "k >= 2"),
    (lambda items: kfold(items[:3], 5), "at least 5"),
    (lambda items: fold_splits(items, 5, 5), "fold must be"),
    (lambda items: fold_splits(items, 5, 0, valid_fraction=1.0), "valid_fraction"),
])
def test_bad_fold_settings_are_refused(synthetic, call, match):
    with pytest.raises(ValueError, match=match):
        call(synthetic)


def test_real_asdiv_a_train_and_valid_in_five_folds(shared_data: Path):
    problems = _pool(str(shared_data / "asdiv-a"))
    assert len(problems) == 974 + 122  # train.json + valid.json: about 1,100 problems evaluated once each
    folds = kfold(problems, 5, seed=0, key=operation_count)
    _check_partition(problems, folds)
    assert sorted(map(len, folds)) == [219, 219, 219, 219, 220]
    strata = Counter(operation_count(p) for p in problems)
    assert strata[1] > 500 and strata[2] > 200  # mostly one- and two-step problems
    for stratum in strata:
        per_fold = [sum(operation_count(p) == stratum for p in f) for f in folds]
        assert max(per_fold) - min(per_fold) <= 1
    again = kfold(_pool(str(shared_data / "asdiv-a")), 5, seed=0, key=operation_count)
    assert [[p.id for p in f] for f in folds] == [[p.id for p in f] for f in again]
