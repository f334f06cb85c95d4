"""Source (c): traces derived from the gold equation are verbose, deterministic per seed, and reach
the gold answer on every ASDiv-A train problem; pruning them at full strength keeps the answer and
cuts at least 40% of the characters."""

from __future__ import annotations

import pytest

from raykd.traces.derive import DeriveError, derive_trace
from raykd.traces.prune import prune_traces, reaches_gold
from raykd.traces.steps import decompose


def test_one_step_per_operation_in_evaluation_order_with_restatements(problem) -> None:
    p = problem((60.0, 14.0, 8.0), ("+", "+", "N0", "N1", "N2"), 82.0,
                text="Evan has 60 books. He gave 14 books to a friend. He gave 8 books to his brother. How many at first?")
    trace = derive_trace(p, seed=0)
    skills = [s.skill for s in decompose(trace)]
    computed = [c.text for s in decompose(trace) if s.skill == "add" for c in s.computations]
    assert computed == ["60 + 14 = 74", "74 + 8 = 82"]
    assert trace.answer == "82" and skills[0] == "restatement"
    assert any("He gave 8 books to his brother." in s for s in trace.steps)  # the fact it uses, restated
    assert reaches_gold(trace, p) is None


def test_deterministic_per_seed_and_worded_differently_across_seeds(problem) -> None:
    p = problem((12.0, 5.0), ("-", "N0", "N1"), 7.0)
    assert derive_trace(p, 3) == derive_trace(p, 3)
    assert len({derive_trace(p, s).render() for s in range(12)}) > 3
    assert any(any(step.startswith(("Check", "Verify")) for step in derive_trace(p, s).steps) for s in range(12))


def test_post_operation_and_negative_intermediates(problem) -> None:
    p = problem((15.0, 122.0), ("/", "N1", "N0"), 8.0, post_op="ceil", answer_text="9")
    with pytest.raises(DeriveError, match="not the gold"):
        derive_trace(p)
    ceil = problem((15.0, 122.0), ("/", "N1", "N0"), 9.0, post_op="ceil")
    assert derive_trace(ceil).steps[-2] == "Rounding up to a whole number gives 9."
    neg = problem((3.0, 5.0, 10.0), ("+", "-", "N0", "N1", "N2"), 8.0)
    trace = derive_trace(neg)
    assert any("(-2) + 10 = 8" in s for s in trace.steps) and reaches_gold(trace, neg) is None


def test_a_problem_without_equation_has_no_derived_trace(problem) -> None:
    with pytest.raises(DeriveError, match="no gold equation"):
        derive_trace(problem((1.0,), (), 1.0))


def test_every_asdiv_a_train_problem_gets_a_trace_that_reaches_its_gold(asdiv_train) -> None:
    assert len(asdiv_train) == 974
    for p in asdiv_train:
        assert reaches_gold(derive_trace(p, seed=0), p) is None, p.id


def test_full_strength_pruning_keeps_every_gold_and_cuts_over_40_percent_of_characters(asdiv_train) -> None:
    traces = [derive_trace(p, seed=0) for p in asdiv_train]
    outcome = prune_traces(traces, asdiv_train, 1.0)
    assert all(outcome.pruned) and not outcome.rejected
    assert all(reaches_gold(t, p) is None for t, p in zip(outcome.traces, asdiv_train))
    cuts = [1 - len(a.render()) / len(b.render()) for a, b in zip(outcome.traces, traces)]
    mean_cut = sum(cuts) / len(cuts)
    print(f"mean character cut at strength 1 over {len(cuts)} ASDiv-A train traces: {mean_cut:.1%}")
    assert mean_cut >= 0.40
    # every surviving step is a bare computation or the rounding of a floor/ceil answer
    assert all(" = " in s or s.startswith("Rounding") for t in outcome.traces for s in t.steps)


def test_a_gold_equation_that_undoes_itself_keeps_its_real_steps(problem) -> None:
    """20 * 7 / 7: the real division recomputes a given number, like a check would; it still
    produces the answer for the first time, so pruning keeps it (the check lines go)."""
    p = problem((20.0, 7.0, 7.0), ("/", "*", "N0", "N1", "N2"), 20.0,
                text="Omar saves $20 each week for 7 weeks. He splits it among 7 friends. How much does each get?")
    for seed in range(8):
        trace = derive_trace(p, seed)
        pruned = prune_traces([trace], [p], 1.0)
        assert pruned.pruned == [True] and pruned.traces[0].steps == ("20 * 7 = 140", "140 / 7 = 20"), seed


def test_facts_are_whole_sentences_and_never_read_as_steps(problem) -> None:
    p = problem((18.0, 0.36, 100.0), ("/", "*", "N1", "N2", "N0"), 2.0,
                text="The divisor is 18. A number is 0.36 today. It grows 100 times, as 36/18=2 says. What is the quotient?")
    trace = derive_trace(p, 0)
    assert not any("36/18=2" in s for s in trace.steps)  # a fact holding a computation is not restated
    assert any(s.endswith(": A number is 0.36 today.") for s in trace.steps)  # "0.36" did not end a sentence
    assert reaches_gold(trace, p) is None and prune_traces([trace], [p], 1.0).pruned == [True]


def test_a_gold_that_is_a_given_number_needs_no_computation(problem) -> None:
    p = problem((5.0, 7.0), ("N1",), 7.0, text="Tom has 5 pens. Ann has 7 pens. How many pens does Ann have?")
    trace = derive_trace(p, 0)
    assert trace.answer == "7" and any("Ann has 7 pens." in s for s in trace.steps)
    assert reaches_gold(trace, p) is None and prune_traces([trace], [p], 1.0).traces[0].steps == ()
