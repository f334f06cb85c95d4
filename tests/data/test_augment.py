"""Number-substituted variants: valid gold equations for every training problem, kinds kept,
deterministic per seed, and fold-aware (no variant of a held-out problem enters training)."""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import pytest

from raykd.data import (
    answers_match,
    apply_post_op,
    evaluate_prefix,
    extract_numbers,
    load_splits,
)
from raykd.data.augment import (
    REASONS,
    augment_problems,
    number_variants,
    variants_and_reason,
)
from raykd.data.folds import fold_splits
from raykd.data.problem import Problem

ASDIV = Path("/work/shared/data/asdiv-a")
SYNTHETIC = "synthetic:640/1100/1100"  # the default sweep's data
K = 4


def _splits(spec: str) -> dict[str, list[Problem]]:
    if spec == "asdiv-a":
        if not (ASDIV / "train.json").is_file():
            pytest.skip(f"ASDiv-A is not at {ASDIV}")
        return load_splits(str(ASDIV))
    return load_splits(spec)


@pytest.fixture(scope="module", params=["asdiv-a", SYNTHETIC])
def data(request):
    splits = _splits(request.param)
    variants, short = augment_problems(splits["train"], K, seed=0)
    return request.param, splits, variants, short


def _decimals(written: str) -> int:
    digits = re.sub(r"[^\d.]", "", written)
    return len(digits.split(".")[1]) if "." in digits else 0


def _is_int(x: float) -> bool:
    return abs(x - round(x)) <= 1e-9 * max(1.0, abs(x))


def test_every_variant_of_every_training_problem_is_a_valid_problem_of_the_same_kind(data):
    name, splits, out, _short = data
    originals = {p.id: p for p in splits["train"]}
    assert out[: len(originals)] == splits["train"]  # the originals first, untouched
    variants = out[len(originals):]
    assert variants, name
    for v in variants:
        o = originals[v.meta["augmented_from"]]
        assert re.fullmatch(re.escape(o.id) + r"~aug[1-9]\d*", v.id)
        assert v.equation == o.equation and v.complexity == o.complexity and v.source == o.source
        # the gold equation (raykd's evaluator, post-op applied) gives the new answer, as the task scores it
        post_op = v.meta.get("post_op")
        value = apply_post_op(evaluate_prefix(v.equation, v.numbers), post_op)
        assert answers_match(value, v.answer, gold_text=v.answer_text), (v.id, value, v.answer, v.answer_text)
        assert math.isclose(value, v.answer, rel_tol=1e-9, abs_tol=1e-9) or (post_op is None and not _is_int(o.answer))
        if "exact_answer" in o.meta:
            assert v.meta["exact_answer"] == pytest.approx(evaluate_prefix(v.equation, v.numbers))
        # its numbers sit at its spans, and the text reads back as exactly them
        assert [(m.value, m.span) for m in extract_numbers(v.text)] == list(zip(v.numbers, v.number_spans))
        for (s, e), x in zip(v.number_spans, v.numbers):
            assert [m.value for m in extract_numbers(v.text[s:e])] == [x]
        # the answer keeps its kind
        if o.answer > 0:
            assert v.answer > 0
        if o.answer >= 0:
            assert v.answer >= 0
        if _is_int(o.answer):
            assert _is_int(v.answer)
        if v.answer_text and o.answer_text.endswith(")"):
            assert v.answer_text.endswith(o.answer_text[o.answer_text.rindex("("):])  # the unit
        # every number keeps its kind: whole stays whole, written decimals keep their places, near the original
        changed = 0
        for k, (x, y) in enumerate(zip(o.numbers, v.numbers)):
            (os_, oe), (vs, ve) = o.number_spans[k], v.number_spans[k]
            if x == y and o.text[os_:oe] == v.text[vs:ve]:
                continue
            changed += 1
            assert f"N{k}" in o.equation  # only numbers the equation uses change
            assert _is_int(x) <= _is_int(y)
            assert _decimals(o.text[os_:oe]) == _decimals(v.text[vs:ve])
            assert o.text[os_:oe].endswith("%") == v.text[vs:ve].endswith("%")
            assert 0 < y and x / 2 - 1e-9 <= y <= max(2 * x, x + 3) + 1e-9
        assert changed >= 1
        # the text around the numbers is the original's
        pieces = lambda p: [p.text[a:b] for a, b in zip([0] + [e for _, e in p.number_spans],
                                                        [s for s, _ in p.number_spans] + [len(p.text)])]
        assert pieces(v) == pieces(o)
    # no two variants of a problem (or a variant and its original) share their numbers
    keys = Counter((v.meta["augmented_from"], v.numbers) for v in variants)
    assert max(keys.values()) == 1
    assert not any(originals[v.meta["augmented_from"]].numbers == v.numbers for v in variants)


def test_almost_every_training_problem_gets_its_variants_and_the_shortfall_is_counted(data):
    name, splits, out, short = data
    per = Counter(v.meta["augmented_from"] for v in out[len(splits["train"]):])
    full = sum(1 for p in splits["train"] if per[p.id] == K)
    assert full >= 0.95 * len(splits["train"]), (name, full, short)
    # every problem short of K is counted under exactly one known reason
    assert sum(short.values()) == len(splits["train"]) - full and set(short) <= set(REASONS)


def test_the_same_seed_gives_the_same_variants_and_another_seed_others():
    train = _splits(SYNTHETIC)["train"][:60]
    a, _ = augment_problems(train, 3, seed=5)
    b, _ = augment_problems(train, 3, seed=5)
    c, _ = augment_problems(train, 3, seed=6)
    assert a == b and [p.meta for p in a] == [p.meta for p in b]
    assert [p.text for p in a] != [p.text for p in c]
    # a problem's variants depend on (seed, its id) alone, not on which problems come with it
    assert number_variants(train[7], 3, 5) == [p for p in a if p.meta.get("augmented_from") == train[7].id]
    assert augment_problems(train, 0, seed=5) == (train, Counter())
    assert number_variants(train[0], 0, 5) == []
    with pytest.raises(ValueError, match="variants per problem"):
        number_variants(train[0], -1, 5)


def _problem(text: str, equation: tuple[str, ...], answer: float, **meta) -> Problem:
    mentions = extract_numbers(text)
    return Problem(id="p", text=text, numbers=tuple(m.value for m in mentions), number_spans=tuple(m.span for m in mentions),
                   equation=equation, answer=answer, complexity="simple", answer_text=f"{answer:g}",
                   meta={"post_op": None, **meta})


def test_words_commas_percentages_constants_and_post_ops_are_rewritten_in_kind():
    words = _problem("Five kids each have twelve apples. How many apples?", ("*", "N0", "N1"), 60)
    for v in number_variants(words, 4, 0):
        assert re.fullmatch(r"[A-Z][a-z-]+ kids each have [a-z][a-z -]+ apples\. How many apples\?", v.text), v.text
    commas = _problem("A town had 1,200 people and 350 more came.", ("+", "N0", "N1"), 1550)
    for v in number_variants(commas, 4, 0):
        assert re.fullmatch(r"A town had (\d,\d{3}|\d{3}) people and \d+ more came\.", v.text), v.text  # 1,000 up: a comma
    percent = _problem("A shirt costs 80 dollars with a 25% discount.", ("*", "N0", "-", "1", "*", "N1", "0.01"), 60)
    got = number_variants(percent, 4, 0)
    assert len(got) == 4
    for v in got:
        assert re.fullmatch(r"A shirt costs \d+ dollars with a \d+% discount\.", v.text) and v.numbers[1] <= 100
        assert v.answer == pytest.approx(v.numbers[0] * (1 - v.numbers[1] / 100)) and v.answer == int(v.answer)
    floor = _problem("There are 29 apples and 9 fit in a box. How many full boxes?", ("/", "N0", "N1"), 3,
                     post_op="floor", exact_answer=29 / 9)
    for v in number_variants(floor, 4, 0):
        assert v.answer == math.floor(v.numbers[0] / v.numbers[1]) and v.numbers[0] % v.numbers[1] != 0  # a remainder
        assert v.meta["exact_answer"] == pytest.approx(v.numbers[0] / v.numbers[1])
    money = _problem("Pens cost $2.40 for 2. How much for 6?", ("*", "/", "N0", "N1", "N2"), 7.2)
    for v in number_variants(money, 4, 0):
        assert re.fullmatch(r"Pens cost \$\d+\.\d\d for \d+\. How much for \d+\?", v.text), v.text
        assert round(v.answer, 2) == v.answer


@pytest.mark.parametrize("problem, reason", [
    (_problem("She ate 3/4 of 8 pies.", ("*", "N0", "N1"), 6), "fraction_in_text"),
    (_problem("She has 8 pies.", (), 8), "no_equation"),
    (_problem("She has 8 pies and 2 more.", ("+", "N0", "N1"), 11), "not_reproduced"),
    (_problem("She has 0 pies.", ("+", "N0", "1"), 1), "no_number_used"),
])
def test_a_problem_that_cannot_be_rewritten_gets_no_variant_and_says_why(problem, reason):
    assert variants_and_reason(problem, 3, 0) == ([], reason)
    assert augment_problems([problem], 3, 0) == ([problem], Counter({reason: 1}))


# -- fold-awareness: the leak test ---------------------------------------------------------------------------------


def _pooled(spec: str) -> list[Problem]:
    """The problems `raykd cv` cuts into folds (its default --pool: every split of the spec)."""
    from raykd.cli.cv import _pooled_problems

    if spec == "asdiv-a":
        if not (ASDIV / "train.json").is_file():
            pytest.skip(f"ASDiv-A is not at {ASDIV}")
        spec = str(ASDIV)
    return _pooled_problems(spec, ["train", "valid", "test"], 0)


@pytest.mark.parametrize("spec", ["asdiv-a", "synthetic:300/60/60"])
def test_no_variant_of_a_held_out_or_valid_problem_enters_a_folds_training(spec):
    from raykd.task.mwp import MWPTask
    from raykd.task.teacher import SolverSpec, build_solver_from_spec

    problems = _pooled(spec)
    folds = 3
    for fold in range(folds):
        splits = fold_splits(problems, folds, fold, seed=0)  # what `raykd cv` trains fold `fold` on
        model, tokenizer = build_solver_from_spec(SolverSpec(preset="tiny"), splits["train"])
        task = MWPTask(tokenizer, model.vocab, splits).augmented(2, seed=0)
        train = task.splits["train"]
        assert task.splits["valid"] == splits["valid"] and task.splits["test"] == splits["test"]
        held = {p.id for p in splits["test"]} | {p.id for p in splits["valid"]}
        held_texts = {p.text for p in splits["test"]} | {p.text for p in splits["valid"]}
        train_ids = {p.id for p in splits["train"]}
        variants = [p for p in train if "augmented_from" in p.meta]
        assert len(variants) > len(splits["train"])  # it did augment
        assert all(p.meta["augmented_from"] in train_ids for p in variants)
        assert not {p.meta["augmented_from"] for p in variants} & held
        assert not {p.text for p in variants} & held_texts
        assert {p.id for p in train} - {p.id for p in variants} == train_ids
        # the features the solver trains on are the augmented split's, the other splits' the same problems
        assert task.num_examples("train") > len(splits["train"])
        assert task.augmentation["variants"] == len(variants) and task.augmentation["originals"] == len(splits["train"])
