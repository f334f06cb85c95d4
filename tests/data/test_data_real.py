"""The real data sets in ../shared/data: every reader reaches the bar on them (skipped if absent)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from raykd.data.check import check_report
from raykd.data.readers import load_problems, load_splits

# MAWPS rows whose gold answer contradicts their own equation (x=34*4 with gold 134, ...): data
# errors, listed so that any other inconsistency fails the test.
MAWPS_INCONSISTENT = {
    "train.json": {
        "370",
        "1556",
        "342",
        "1592",
        "756",
        "1115",
        "125",
        "1767",
        "67",
        "615",
        "2234",
        "2250",
        "1138",
        "2185",
        "2286",
        "1679",
        "513",
        "231",
    },
    "valid.json": {"886"},
    "test.json": {"1543", "1391"},
}


def test_asdiv_a_train(shared_data: Path) -> None:
    result = load_problems(f"asdiv-a:{shared_data / 'asdiv-a' / 'train.json'}")
    report = check_report(result)
    assert (report["loaded"], report["skipped"], report["consistent"]) == (974, 0, 1.0)
    floors = [p for p in result.problems if p.meta["post_op"] == "floor"]
    ceils = [p for p in result.problems if p.meta["post_op"] == "ceil"]
    assert (len(floors), len(ceils)) == (11, 7)
    assert all(p.answer == int(p.meta["exact_answer"]) for p in floors)
    assert all(p.answer == int(p.meta["exact_answer"]) + 1 for p in ceils)
    assert report["constants_only"] == 0  # every equation uses the text's numbers, words included


def test_asdiv_a_valid(shared_data: Path) -> None:
    report = check_report(load_problems(str(shared_data / "asdiv-a" / "valid.json")))
    assert (report["loaded"], report["skipped"], report["consistent"]) == (122, 0, 1.0)


def test_math23k_dev(shared_data: Path) -> None:
    result = load_problems(f"math23k:{shared_data / 'math23k' / 'dev.json'}")
    report = check_report(result)
    assert report["loaded"] == 2316 and report["skipped"] == 0
    assert report["loaded"] - report["inconsistent"] >= 2315
    assert report["constants_only"] == 0
    assert all(report["by_complexity"][level] > 50 for level in ("simple", "medium", "complex"))


@pytest.mark.parametrize(("name", "rows"), [("train.json", 1898), ("valid.json", 237), ("test.json", 238)])
def test_mawps(shared_data: Path, name: str, rows: int) -> None:
    result = load_problems(f"mawps:{shared_data / 'mawps' / name}")
    skipped = [(s.id, s.reason) for s in result.skipped]
    if name == "train.json":  # its one malformed equation, "X=0.32=0.21"
        assert skipped == [("603", "unusable equation: 'X=0.32=0.21': more than one '=' in 'X=0.32=0.21'")]
    else:
        assert skipped == []
    assert len(result.problems) + len(skipped) == rows
    assert {s.id for s in result.inconsistent} == MAWPS_INCONSISTENT[name]


def test_real_splits_are_stratified(shared_data: Path) -> None:
    splits = load_splits(str(shared_data / "math23k"), seed=0)  # only dev.json: split 7:1:2
    sizes = {k: len(v) for k, v in splits.items()}
    assert sizes == {"train": 1622, "valid": 231, "test": 463}  # rounded per complexity level
    whole = Counter(p.complexity for part in splits.values() for p in part)
    for part in splits.values():
        counts = Counter(p.complexity for p in part)
        for level, n in whole.items():
            assert abs(counts[level] / len(part) - n / 2316) < 0.01
    asdiv = load_splits(str(shared_data / "asdiv-a"), seed=0)  # train + valid: valid is the test split
    assert {k: len(v) for k, v in asdiv.items()} == {"train": 866, "valid": 108, "test": 122}
