from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raykd.data.splits import SPLIT_RATIOS, ratios_for, stratified_split


def test_ratio_table() -> None:
    assert SPLIT_RATIOS["math23k"] == (0.7, 0.1, 0.2)
    assert SPLIT_RATIOS["asdiv-a"] == (0.8, 0.1, 0.1)
    assert ratios_for("mawps") == ratios_for("synthetic") == (0.8, 0.1, 0.1)


ITEMS = [(level, i) for level, n in (("simple", 50), ("medium", 30), ("complex", 20)) for i in range(n)]


def test_stratified_proportions() -> None:
    train, valid, test = stratified_split(ITEMS, (0.8, 0.1, 0.1), key=lambda x: x[0], seed=0)
    assert (len(train), len(valid), len(test)) == (80, 10, 10)
    assert Counter(x[0] for x in valid) == {"simple": 5, "medium": 3, "complex": 2}
    assert Counter(x[0] for x in test) == {"simple": 5, "medium": 3, "complex": 2}
    assert Counter(x[0] for x in train) == {"simple": 40, "medium": 24, "complex": 16}


def test_seeded() -> None:
    a = stratified_split(ITEMS, (0.7, 0.1, 0.2), key=lambda x: x[0], seed=5)
    assert a == stratified_split(ITEMS, (0.7, 0.1, 0.2), key=lambda x: x[0], seed=5)
    assert a != stratified_split(ITEMS, (0.7, 0.1, 0.2), key=lambda x: x[0], seed=6)


@given(
    st.lists(st.tuples(st.sampled_from("abc"), st.integers()), unique=True, max_size=200),
    st.lists(st.floats(min_value=0.01, max_value=10), min_size=1, max_size=4),
    st.integers(min_value=0, max_value=2**32),
)
def test_partition_and_per_key_balance(items: list, ratios: list, seed: int) -> None:
    parts = stratified_split(items, ratios, key=lambda x: x[0], seed=seed)
    assert len(parts) == len(ratios)
    assert sorted(x for part in parts for x in part) == sorted(items)
    total = sum(ratios)
    for key in "abc":
        n = sum(1 for x in items if x[0] == key)
        for part, ratio in zip(parts, ratios, strict=True):
            assert abs(sum(1 for x in part if x[0] == key) - n * ratio / total) < 1


@pytest.mark.parametrize("ratios", [(), (0.5, -0.1), (0.0, 0.0)])
def test_invalid_ratios(ratios: tuple) -> None:
    with pytest.raises(ValueError, match="invalid split ratios"):
        stratified_split(ITEMS, ratios, key=lambda x: x[0])
