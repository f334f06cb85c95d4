"""The rule-based pruner (DRP's pruning, offline and deterministic) and the gold-answer acceptance.

Four named rules, each a function `Trace -> Trace` over the step/value graph of `steps.decompose`:

- "checks": drop check steps (they verify, they do not carry the solution);
- "dead": drop steps whose produced values neither a later kept step nor the answer uses
  (computed backwards from the step that produces the answer; when no step produces it, nothing
  is dropped, since then nothing can be told dead);
- "restatements": drop steps without a computation that restate facts or the question;
- "compress": cut each remaining arithmetic step to its computations ("12 - 5 = 7").

Strength (searchable, in [0, 1]) adds one rule per quarter, in the order above:
0 -> none; >= 0.25 -> checks; >= 0.5 -> + dead; >= 0.75 -> + restatements; 1.0 -> + compress.

A pruned trace is kept only if it still reaches the gold answer (`reaches_gold`): its answer line
matches the gold (the correctness filter), every computation left is right, and a remaining
step produces the answer value (post-operation applied): a rule that drops the step the answer
rests on (say, the only line giving it is written as a check) is refused. (A problem whose gold
equation is a single value needs no computing step.) Otherwise the original is kept,
flagged as not pruned, and the rejection counted by reason.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from raykd.data.answers import answers_match, apply_post_op
from raykd.data.problem import Problem
from raykd.traces.filter import answer_verdict
from raykd.traces.format import Trace
from raykd.traces.steps import Step, close, decompose

RULE_ORDER: tuple[str, ...] = ("checks", "dead", "restatements", "compress")
STRENGTH_STEP = 0.25
"""Each quarter of strength adds the next rule of `RULE_ORDER`."""
REJECTIONS: tuple[str, ...] = (
    "no-answer-line", "unparseable-answer", "wrong-answer", "wrong-arithmetic", "no-chain", "original-fails",
    "not-shorter",
)


def _keep(trace: Trace, steps: Sequence[Step], keep: Callable[[Step], bool]) -> Trace:
    return Trace(tuple(s.text for s in steps if keep(s)), trace.answer)


def drop_checks(trace: Trace) -> Trace:
    """Rule "checks": without the steps tagged "check"."""
    return _keep(trace, decompose(trace), lambda s: s.skill != "check")


def drop_restatements(trace: Trace) -> Trace:
    """Rule "restatements": without the steps tagged "restatement"."""
    return _keep(trace, decompose(trace), lambda s: s.skill != "restatement")


def _produces_answer(step: Step, answer: float, post_op: str | None) -> bool:
    return any(close(v, answer) or close(apply_post_op(v, post_op), answer) for v in step.produces)


def live_steps(trace: Trace, post_op: str | None = None) -> set[int] | None:
    """Indices of the steps the answer depends on, or None when no step produces the answer."""
    steps = decompose(trace)
    answer = trace.value
    if answer is None:
        return None
    roots = [s for s in steps if s.skill != "check" and _produces_answer(s, answer, post_op)]
    if not roots:
        return None
    live, todo = set(), [roots[-1].index]
    while todo:
        i = todo.pop()
        if i in live:
            continue
        live.add(i)
        todo.extend(j for j in steps[i].uses_steps if j is not None)
    return live


def drop_dead(trace: Trace, post_op: str | None = None) -> Trace:
    """Rule "dead": without the computing steps the answer does not depend on (see module doc)."""
    live = live_steps(trace, post_op)
    if live is None:
        return trace
    return _keep(trace, decompose(trace), lambda s: not s.produces or s.index in live)


def compress(trace: Trace) -> Trace:
    """Rule "compress": each arithmetic step becomes its computations only ("12 - 5 = 7")."""
    texts = tuple("; ".join(c.text for c in s.computations) if s.arithmetic else s.text for s in decompose(trace))
    return Trace(texts, trace.answer)


RULES: dict[str, Callable[..., Trace]] = {
    "checks": drop_checks,
    "dead": drop_dead,
    "restatements": drop_restatements,
    "compress": compress,
}


def rules_for_strength(strength: float) -> tuple[str, ...]:
    """The rules a strength applies: one more per quarter, in `RULE_ORDER` (see module doc).
    The one place that maps strength to rules: the causal-LM task's `trace_strength` (and a
    sweep searching `task.trace_strength`) prunes its targets through it. ValueError for
    anything but a number in [0, 1] (a bool too: `true` in YAML is no strength)."""
    if isinstance(strength, bool) or not (isinstance(strength, (int, float)) and math.isfinite(strength)
                                          and 0.0 <= strength <= 1.0):
        raise ValueError(f"pruning strength must be a number in [0, 1], got {strength!r}")
    return RULE_ORDER[: int(strength / STRENGTH_STEP + 1e-9)]


def apply_rules(trace: Trace, rules: Sequence[str], post_op: str | None = None) -> Trace:
    """`trace` after the named rules, applied in `RULE_ORDER` whatever order they are given in."""
    unknown = set(rules) - set(RULES)
    if unknown:
        raise ValueError(f"unknown pruning rules {sorted(unknown)}; known: {list(RULE_ORDER)}")
    for name in RULE_ORDER:
        if name in rules:
            trace = drop_dead(trace, post_op) if name == "dead" else RULES[name](trace)
    return trace


def reaches_gold(trace: Trace, problem: Problem) -> str | None:
    """None when `trace` still reaches the gold answer of `problem`, else why not (`REJECTIONS`)."""
    if (reason := answer_verdict(trace, problem)) is not None:
        return reason
    steps = decompose(trace)
    if any(not c.correct for s in steps for c in s.computations):
        return "wrong-arithmetic"
    if len(problem.equation) == 1:  # the gold is a given value: there is nothing to compute
        return None
    post_op = problem.meta.get("post_op")
    gold_text = problem.answer_text or None
    for step in steps:
        if any(
            answers_match(apply_post_op(v, post_op), problem.answer, gold_text=gold_text) for v in step.produces
        ):
            return None
    return "no-chain"


@dataclass
class PruneOutcome:
    """One trace per input (pruned where accepted, else the original), which were pruned, and the
    rejections by reason."""

    traces: list[Trace] = field(default_factory=list)
    pruned: list[bool] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)

    @property
    def rejection_count(self) -> int:
        return sum(self.rejected.values())


def accept(original: Trace, candidate: Trace, problem: Problem, outcome: PruneOutcome) -> None:
    """Record `candidate` if it reaches the gold, else the original with the rejection counted."""
    if (reason := reaches_gold(original, problem)) is not None:
        outcome.rejected["original-fails"] += 1
    elif (reason := reaches_gold(candidate, problem)) is not None:
        outcome.rejected[reason] += 1
    if reason is None:
        outcome.traces.append(candidate)
        outcome.pruned.append(True)
    else:
        outcome.traces.append(original)
        outcome.pruned.append(False)


def prune_traces(traces: Sequence[Trace], problems: Sequence[Problem], strength: float) -> PruneOutcome:
    """Prune each trace (one per problem, in order) at `strength`; keep only gold-reaching prunes."""
    if len(traces) != len(problems):
        raise ValueError(f"{len(traces)} traces for {len(problems)} problems")
    rules = rules_for_strength(strength)
    outcome = PruneOutcome()
    for trace, problem in zip(traces, problems):
        accept(trace, apply_rules(trace, rules, problem.meta.get("post_op")), problem, outcome)
    return outcome
