"""Which chains the paper's tables need.

Every experiment is a `ChainConfig` override on top of the user's base settings (training
budget, learning rates, measurement). Table 1 is one progressive chain of three rounds whose
schedule (Eq. 5, p_min 0.15, p_max 0.30, n = 1) passes through 20%, 25% and 30%; Tables 3a and 4
compare variants at 25% of the heads, each one round straight to 25% with the same budget, so the
rows differ only in the ablated part. Variants that coincide (full method = α 0.5, norm only =
α 1, entropy only = α 0) are run once and shared between the tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from raykd.errors import ConfigError

PAPER_ALPHA = 0.5
AT_25 = {"rounds": 1, "p_min": 0.25, "p_max": 0.25, "n": 1.0}
PROGRESSIVE = {"rounds": 3, "p_min": 0.15, "p_max": 0.30, "n": 1.0, "alpha": PAPER_ALPHA}
ALPHAS = (0.0, 0.3, 0.5, 0.7, 1.0)


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    overrides: dict[str, Any] = field(default_factory=dict)


def _alpha(a: float) -> Experiment:
    return Experiment(f"alpha-{a:.1f}", f"one round to 25%, α = {a:.1f}", {**AT_25, "alpha": a})


def _at25(name: str, description: str, **changes: Any) -> Experiment:
    return Experiment(name, description, {**AT_25, "alpha": PAPER_ALPHA, **changes})


EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in [
        Experiment("progressive", "three rounds: 20% -> 25% -> 30% of heads, α 0.5", dict(PROGRESSIVE)),
        *(_alpha(a) for a in ALPHAS),
        _at25("pruning-only", "prune to 25%, fine-tune on the task loss only (λ1 = 0)", lambda1=0.0, lambda2=1.0),
        _at25("response-only", "distil the output distribution only (no attention MSE)", distill_feature=False),
        _at25("feature-only", "distil the attention maps only (no KL)", distill_response=False),
        _at25("random", "random head choice instead of importance", importance="random"),
        _at25("global", "one global ranking over all attention kinds instead of per kind", ranking="global"),
        _at25("no-pruning", "distillation without pruning (teacher copy, same loss and budget)", prune=False),
    ]
}

# Table -> rows: (row label, experiment name). Table 3b reuses Table 1's chain.
TABLES: dict[str, list[tuple[str, str]]] = {
    "1": [("20% / 25% / 30%", "progressive")],
    "3a": [(f"{a:.1f}", f"alpha-{a:.1f}") for a in ALPHAS],
    "3b": [("20% / 25% / 30%", "progressive")],
    "4": [
        ("pruning-only", "pruning-only"),
        ("norm-only", "alpha-1.0"),
        ("entropy-only", "alpha-0.0"),
        ("response-only", "response-only"),
        ("feature-only", "feature-only"),
        ("random", "random"),
        ("global", "global"),
        ("no-pruning", "no-pruning"),
        ("full", "alpha-0.5"),
    ],
}


def plan_experiments(tables: list[str] | tuple[str, ...]) -> list[Experiment]:
    """The experiments the requested tables need, each once, in a useful order (Table 1 first,
    then the full method, then the variants in table order)."""
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise ConfigError(f"unknown table(s) {', '.join(unknown)}; known: {', '.join(TABLES)}")
    names: list[str] = []
    wanted = [name for t in TABLES if t in tables for _, name in TABLES[t]]
    if "alpha-0.5" in wanted:
        wanted.insert(1 if "progressive" in wanted else 0, "alpha-0.5")
    for name in wanted:
        if name not in names:
            names.append(name)
    return [EXPERIMENTS[n] for n in names]
