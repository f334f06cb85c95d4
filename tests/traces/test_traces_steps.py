"""Step decomposition: skill tags on hand-written steps, computations read by the safe parser,
and the step/value graph (which step produced each value a step uses)."""

from __future__ import annotations

import pytest

from raykd.traces.format import Trace, parse_trace
from raykd.traces.steps import computations, decompose


def _skills(*lines: str, answer: str = "0") -> list[str]:
    return [s.skill for s in decompose(Trace(tuple(lines), answer))]


@pytest.mark.parametrize(
    ("line", "skill"),
    [
        ("So 12 + 5 = 17.", "add"),
        ("12 - 5 = 7", "subtract"),
        ("Each bag holds 3 * 4 = 12 apples.", "multiply"),
        ("Natalia sold 48/2 = 24 clips in May.", "divide"),
        ("The area grows as 2 ^ 3 = 8.", "power"),
        ("(6 + 4) * 9 = 90", "multiply"),  # the top operator decides
        ("It takes 3 hours, which is 3 * 60 = 180 minutes.", "unit-conversion"),
        ("In cents that is 4 * 100 = 400 cents.", "unit-conversion"),
        ("She bought 2 * 12 = 24 eggs, two dozen.", "unit-conversion"),
        ("He ran 3 * 60 = 180 laps.", "multiply"),  # 60 without a unit word is no conversion
        ("We know: Cody has 7 marbles.", "restatement"),
        ("The question asks: How many marbles?", "restatement"),
        ("So the answer is 12.", "restatement"),
        ("Check: 7 + 5 = 12.", "check"),
        ("Verify: 8 * 15 = 120.", "check"),
        ("Rounding down to a whole number gives 8.", "other"),
        ("We round it up to 9.", "other"),
        ("From the problem: Betty bought 140 round stones.", "restatement"),
        ("The question asks: how many rounds of golf can you play with $400?", "restatement"),
    ],
)
def test_one_step_gets_its_skill(line: str, skill: str) -> None:
    assert _skills(line) == [skill]


def test_recomputing_a_known_value_from_an_earlier_result_is_a_check() -> None:
    assert _skills("12 - 5 = 7", "7 + 5 = 12", answer="7") == ["subtract", "check"]
    # the same shape where it produces the answer for the first time is a real step
    assert _skills("6 * 2 = 12", "12 / 6 = 2", answer="2") == ["multiply", "divide"]


def test_computations_are_parsed_never_evaluated_as_code() -> None:
    assert [c.text for c in computations("x is -3 + 4 = 1 and 2 ^ 3 = 8, 10/3 = 3.33")] == ["-3 + 4 = 1", "2 ^ 3 = 8", "10/3 = 3.33"]
    assert all(c.correct for c in computations("10/3 = 3.33 and 1,200 + 5 = 1,205"))
    assert not computations("12 - 5 = 8")[0].correct
    assert computations("__import__('os').system('x') = 1") == ()
    assert computations("a = 5, nothing computed here: 7 = 7") == ()


def test_the_graph_links_each_used_value_to_the_step_that_produced_it() -> None:
    trace = parse_trace(
        "We know: 60 books, 14 given away.\n60 + 14 = 74\nCheck: 74 - 14 = 60\n74 + 8 = 82\n3 * 2 = 6\nAnswer: 82"
    )
    steps = decompose(trace)
    assert [s.skill for s in steps] == ["restatement", "add", "check", "add", "multiply"]
    assert steps[1].produces == (74.0,) and steps[1].uses_steps == (None, None)  # given numbers
    assert steps[3].uses == (74.0, 8.0) and steps[3].uses_steps == (1, None)
    assert steps[4].produces == (6.0,)


def test_an_operand_equal_to_its_own_result_still_links_to_its_producer() -> None:
    steps = decompose(parse_trace("3 + 2 = 5\n5 * 1 = 5\nAnswer: 5"))
    assert steps[1].uses == (5.0, 1.0) and steps[1].uses_steps == (0, None)
    inner = decompose(parse_trace("She sold 3*4 = 12 more, that is 12 * 60 = 720.\nAnswer: 720"))[0]
    assert inner.uses == (3.0, 4.0, 60.0)


def test_close_values_match_across_steps() -> None:
    steps = decompose(parse_trace("122 / 15 = 8.133333333333333\n8.133333 * 3 = 24.4\nAnswer: 24.4"))
    assert steps[1].uses_steps == (0, None)
