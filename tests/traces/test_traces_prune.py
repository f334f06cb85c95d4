"""The rule-based pruner on hand-written traces: each rule alone, the strength mapping, and the
gold-answer acceptance (a prune that would lose the answer is rejected, counted, and the original kept)."""

from __future__ import annotations

import pytest

from raykd.traces.format import Trace, parse_trace
from raykd.traces.prune import (
    RULE_ORDER,
    apply_rules,
    compress,
    drop_checks,
    drop_dead,
    drop_restatements,
    prune_traces,
    reaches_gold,
    rules_for_strength,
)

VERBOSE = parse_trace(
    """The question asks: How many apples are left?
We know: Tom has 12 apples and eats 5.
So we compute 12 - 5 = 7.
Check: 7 + 5 = 12.
He also has 3 bags, so 3 * 4 = 12 pears.
Therefore the answer is 7.
Answer: 7"""
)


def _lines(trace: Trace) -> list[str]:
    return list(trace.steps)


def test_dead_rule_drops_only_results_nothing_uses() -> None:
    assert _lines(drop_dead(VERBOSE)) == [
        "The question asks: How many apples are left?",
        "We know: Tom has 12 apples and eats 5.",
        "So we compute 12 - 5 = 7.",
        "Therefore the answer is 7.",
    ]  # the check and the pears are dead; steps without results are not this rule's business
    chain = parse_trace("2 * 3 = 6\n10 - 4 = 6\n6 + 1 = 7\n6 * 5 = 30\nAnswer: 30")
    # 30 uses the most recent 6 (step 2): step 1 is dead, and so is the 7
    assert _lines(drop_dead(chain)) == ["10 - 4 = 6", "6 * 5 = 30"]
    # nothing produces the answer: nothing can be told dead
    assert drop_dead(parse_trace("2 * 3 = 6\nAnswer: 5")) == parse_trace("2 * 3 = 6\nAnswer: 5")


def test_dead_rule_follows_the_post_operation() -> None:
    trace = parse_trace("122 / 15 = 8.133333333333333\n2 + 2 = 4\nAnswer: 8")
    assert _lines(drop_dead(trace)) == _lines(trace)  # 8 is produced by no step
    assert _lines(drop_dead(trace, "floor")) == ["122 / 15 = 8.133333333333333"]


def test_restatement_rule() -> None:
    assert _lines(drop_restatements(VERBOSE)) == [
        "So we compute 12 - 5 = 7.", "Check: 7 + 5 = 12.", "He also has 3 bags, so 3 * 4 = 12 pears.",
    ]


def test_check_rule() -> None:
    assert "Check: 7 + 5 = 12." not in drop_checks(VERBOSE).steps
    assert len(drop_checks(VERBOSE).steps) == len(VERBOSE.steps) - 1
    inverse = parse_trace("12 - 5 = 7\n7 + 5 = 12\nAnswer: 7")  # a check without the word
    assert _lines(drop_checks(inverse)) == ["12 - 5 = 7"]


def test_compress_rule_keeps_only_computations() -> None:
    assert _lines(compress(VERBOSE)) == [
        "The question asks: How many apples are left?",
        "We know: Tom has 12 apples and eats 5.",
        "12 - 5 = 7",
        "Check: 7 + 5 = 12.",  # checks are not arithmetic steps: other rules drop them
        "3 * 4 = 12",
        "Therefore the answer is 7.",
    ]
    gsm = parse_trace("She sold 3*4 = 12 more, and 12 hours is 12 * 60 = 720 minutes.\nAnswer: 720")
    assert _lines(compress(gsm)) == ["3*4 = 12; 12 * 60 = 720"]


def test_every_rule_keeps_the_answer_line() -> None:
    for rule in RULE_ORDER:
        assert apply_rules(VERBOSE, [rule]).answer == "7"


@pytest.mark.parametrize(
    ("strength", "rules"),
    [(0.0, ()), (0.2, ()), (0.25, ("checks",)), (0.5, ("checks", "dead")), (0.7, ("checks", "dead")),
     (0.75, ("checks", "dead", "restatements")), (1.0, RULE_ORDER)],
)
def test_strength_adds_one_rule_per_quarter(strength: float, rules: tuple[str, ...]) -> None:
    assert rules_for_strength(strength) == rules


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.5"])
def test_strength_outside_0_1_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="strength"):
        rules_for_strength(bad)  # type: ignore[arg-type]


def test_full_strength_on_a_verbose_trace(problem) -> None:
    p = problem((12.0, 5.0), ("-", "N0", "N1"), 7.0)
    outcome = prune_traces([VERBOSE], [p], 1.0)
    assert outcome.traces == [parse_trace("12 - 5 = 7\nAnswer: 7")] and outcome.pruned == [True]
    assert not outcome.rejected


def test_a_prune_that_loses_the_answer_is_rejected_and_the_original_kept(problem) -> None:
    p = problem((12.0, 5.0), ("-", "N0", "N1"), 7.0)
    # the only step that gives 7 is written as a check: dropping checks loses the chain to the answer
    rests_on_check = parse_trace("So 10 + 2 = 12.\nCheck: 12 - 5 = 7.\nAnswer: 7")
    assert reaches_gold(rests_on_check, p) is None
    for strength in (0.25, 0.5, 0.75, 1.0):
        outcome = prune_traces([rests_on_check, VERBOSE], [p, p], strength)
        assert outcome.traces[0] == rests_on_check and outcome.pruned == [False, True]
        assert outcome.rejected == {"no-chain": 1}
    # the answer line is kept by every rule, so the chain is what a rule can lose; the acceptance
    # also refuses wrong answers, wrong arithmetic and unparseable answers
    assert reaches_gold(parse_trace("We know 12 and 5.\nAnswer: 7"), p) == "no-chain"
    assert reaches_gold(parse_trace("12 - 5 = 8\n8 - 1 = 7\nAnswer: 7"), p) == "wrong-arithmetic"
    assert reaches_gold(parse_trace("12 - 5 = 7\nAnswer: 8"), p) == "wrong-answer"
    assert reaches_gold(Trace(("12 - 5 = 7",), "seven-ish"), p) == "unparseable-answer"


def test_an_original_that_misses_the_gold_is_kept_and_counted(problem) -> None:
    p = problem((12.0, 5.0), ("-", "N0", "N1"), 7.0)
    wrong = parse_trace("We know 12 and 5.\n12 + 5 = 17\nAnswer: 17")
    outcome = prune_traces([wrong], [p], 1.0)
    assert outcome.traces == [wrong] and outcome.pruned == [False] and outcome.rejected == {"original-fails": 1}


def test_post_operation_problems_prune_to_the_division(problem) -> None:
    p = problem((15.0, 122.0), ("/", "N1", "N0"), 8.0, post_op="floor")
    trace = parse_trace("We know: 15 students, 122 portfolios.\n122 / 15 = 8.133333333333333\n"
                        "Verify: 8.133333333333333 * 15 = 122.\nRounding down to a whole number gives 8.\nAnswer: 8")
    outcome = prune_traces([trace], [p], 1.0)
    assert outcome.traces[0].steps == ("122 / 15 = 8.133333333333333", "Rounding down to a whole number gives 8.")
