"""A trace-mode student's targets: each problem's source trace, pruned at a strength, kept only
where the pruned trace still reaches the gold answer.

Why here and not in the task: which source a target comes from, which rules a strength applies
(`prune.rules_for_strength`, the one place that maps strength to rules) and what happens to a
prune that loses the answer are trace questions; the causal-LM task only tokenizes the result.

Sources (`TRACE_SOURCES`): "file" takes a problem's trace from the given mapping (a traces file)
and derives the problems it lacks from the gold equation; "derived" derives every trace from the
gold equation. A rejected prune (`prune.reaches_gold` says why) falls back to the unpruned trace:
the student still learns every problem, and `TargetRecord` counts the rejection by reason, so a
strength whose prunes mostly fail shows as such instead of silently training on fewer problems.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from raykd.data.problem import Problem
from raykd.errors import ConfigError, DataError
from raykd.traces.derive import DeriveError, derive_trace
from raykd.traces.format import ANSWER_PREFIX, parse_trace
from raykd.traces.prune import PruneOutcome, accept, apply_rules, rules_for_strength

TRACE_SOURCES: tuple[str, ...] = ("derived", "file")


@dataclass
class TargetRecord:
    """What a split's targets are made of: sources, pruning strength, accepted and rejected
    prunes (by reason) and target tokens (EOS excluded)."""

    strength: float = 0.0
    given: int = 0
    derived: int = 0
    pruned: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    tokens: list[int] = field(default_factory=list)

    @property
    def rejection_count(self) -> int:
        return sum(self.rejected.values())

    def to_dict(self) -> dict[str, float]:
        """Flat scalars (a trial's metrics, a results-store row): `strength`, `given`,
        `derived`, `pruned`, `rejected`, `rejected_<reason>`, `tokens_mean`."""
        n = len(self.tokens)
        return {"strength": self.strength, "given": self.given, "derived": self.derived, "pruned": self.pruned,
                "rejected": self.rejection_count, **{f"rejected_{r}": c for r, c in sorted(self.rejected.items())},
                "tokens_mean": sum(self.tokens) / n if n else 0.0}


def check_trace_strength(strength: float, output: str) -> None:
    """One `ConfigError` line where `strength` is not a pruning strength, or prunes the targets of
    a task that writes none (`output` other than "trace"); the task and its plug-in both ask here."""
    try:
        rules_for_strength(strength)
    except ValueError as exc:
        raise ConfigError(f"trace_strength: {exc}") from None
    if strength != 0 and output != "trace":
        raise ConfigError("trace_strength needs output: trace (it prunes the targets of trace mode)")

def source_text(problem: Problem, given: Mapping[str, str] | None) -> tuple[str, str]:
    """(trace text, "given" or "derived") of `problem`: from `given` where it has the problem,
    else derived from the gold equation. DataError (one line) for a given trace without an
    answer line (it would teach the model never to answer) or a problem nothing can be derived for."""
    if given is not None and problem.id in given:
        text = given[problem.id]
        if parse_trace(text) is None:
            raise DataError(f"the trace of problem {problem.id} has no '{ANSWER_PREFIX}' line")
        return text, "given"

    try:
        return derive_trace(problem, seed=0).render(), "derived"
    except DeriveError as exc:
        raise DataError(f"no trace for problem {problem.id} and none can be derived: {exc}") from None


def pruned_text(text: str, problem: Problem, strength: float) -> tuple[str, str | None]:
    """(target text, None) where the prune at `strength` reaches the gold (strength 0: `text`
    itself, byte for byte), else (`text`, the rejection reason)."""
    rules = rules_for_strength(strength)
    if not rules:
        return text, None
    trace = parse_trace(text)
    if trace is None:  # (source_text refuses these; a direct caller gets the same verdict as prune)
        return text, "no-answer-line"
    outcome = PruneOutcome()
    accept(trace, apply_rules(trace, rules, problem.meta.get("post_op")), problem, outcome)
    if outcome.pruned[0]:
        return outcome.traces[0].render(), None
    return text, next(iter(outcome.rejected))


def target_text(problem: Problem, given: Mapping[str, str] | None, strength: float,
                record: TargetRecord | None = None) -> str:
    """The trace `problem`'s student learns (`source_text`, then `pruned_text`), counted in `record`."""
    text, kind = source_text(problem, given)
    target, reason = pruned_text(text, problem, strength)
    if record is not None:
        setattr(record, kind, getattr(record, kind) + 1)
        if reason is not None:
            record.rejected[reason] += 1
        elif rules_for_strength(strength):
            record.pruned += 1
    return target
