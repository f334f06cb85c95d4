"""Multi-objective successive halving over chain rounds (asynchronous, as ASHA; ranked as MOASHA).

Rungs are chain rounds: min_rounds, min_rounds*eta, min_rounds*eta^2, ... below the chain's last
round (a chain's last round is its result, never a rung). When a trial reports a rung round, it
is compared with every trial that has reached that rung so far (those stopped there included):

- coordinates: (accuracy at that round, the trial's *final* speed forecast). A chain's round-r
  model is less pruned than its final one, so its round-r speed would favour slow chains; the
  final forecast (`raykd.method.forecast`: the configuration's last-round structure counts, priced
  by the latency table) is fixed before training and the same at every rung, so a rung compares
  what each chain is heading for;
- ranking: non-dominated sorting (Optuna's, as `Study.best_trials` uses), fronts F0, F1, ...;
- decision: with n trials at the rung, the top k = floor(n / eta) go on: a trial continues when
  fewer than k trials sit in fronts strictly better than its own. So trials with identical
  coordinates share a fate, and a rung with fewer than eta trials stops nothing (there is no top
  1/eta of two trials yet); the first arrivals always continue, as in ASHA.
- a coordinate that is missing or not finite counts as the worst value.

Decisions are never revisited (asynchronous: no trial waits for a rung to fill). The state is the
rung records, a JSON-able dict, so a resumed sweep makes the same decisions it would have made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import moocore
import numpy as np

from raykd.errors import ConfigError

SCHEDULER_TYPE = "mo-successive-halving"


@dataclass(frozen=True)
class HalvingConfig:
    """`early_stop: {type: mo-successive-halving, eta: 3, min_rounds: 1}` and the coordinates it
    ranks on (metric, mode): accuracy at the rung, the final speed forecast."""

    eta: int = 3
    min_rounds: int = 1
    coordinates: tuple[tuple[str, str], ...] = (("accuracy", "max"), ("forecast_speedup", "max"))

    def __post_init__(self) -> None:
        if isinstance(self.eta, bool) or not isinstance(self.eta, int) or self.eta < 2:
            raise ConfigError(f"early_stop.eta must be an integer >= 2, got {self.eta!r}")
        if isinstance(self.min_rounds, bool) or not isinstance(self.min_rounds, int) or self.min_rounds < 1:
            raise ConfigError(f"early_stop.min_rounds must be an integer >= 1, got {self.min_rounds!r}")
        if not self.coordinates or any(mode not in ("max", "min") for _, mode in self.coordinates):
            raise ConfigError("successive halving needs coordinates (metric, max|min)")

    def rungs(self, rounds: int) -> list[int]:
        """The rung rounds of a chain of `rounds` rounds (its last round is never a rung)."""
        out, r = [], self.min_rounds
        while r < rounds:
            out.append(r)
            r *= self.eta
        return out


@dataclass(frozen=True)
class Decision:
    trial_id: str
    rung: int
    go_on: bool
    at_rung: int  # trials at this rung, this one included
    keep: int  # how many of them go on (floor(at_rung / eta); everyone when at_rung < eta)
    better: int  # trials in fronts strictly better than this one's


@dataclass
class SuccessiveHalving:
    """The rung records and the decisions taken on them (see the module doc)."""

    config: HalvingConfig = field(default_factory=HalvingConfig)
    records: dict[int, dict[str, list[float]]] = field(default_factory=dict)  # rung -> trial -> coordinates
    decisions: dict[tuple[str, int], Decision] = field(default_factory=dict)  # (trial, rung) -> decision

    def coordinates(self, metrics: Mapping[str, Any]) -> list[float]:
        """A trial's coordinates as losses to minimise (missing / non-finite: +inf, the worst)."""
        out = []
        for metric, mode in self.config.coordinates:
            value = metrics.get(metric)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            out.append((-float(value) if mode == "max" else float(value)) if ok else math.inf)
        return out

    def on_round(self, trial_id: str, round_: int, rounds: int, metrics: Mapping[str, Any]) -> Decision | None:
        """The decision for a trial that just finished `round_` of `rounds` (None: not a rung)."""
        if round_ not in self.config.rungs(rounds):
            return None
        if (trial_id, round_) in self.decisions:  # a restarted trial re-reporting a rung keeps its first decision
            return self.decisions[(trial_id, round_)]
        self.records.setdefault(round_, {})[trial_id] = self.coordinates(metrics)
        decision = self._decide(trial_id, round_)
        self.decisions[(trial_id, round_)] = decision
        return decision

    def _decide(self, trial_id: str, round_: int) -> Decision:
        rung = self.records[round_]
        ids = list(rung)
        n = len(ids)
        if n < self.config.eta:
            return Decision(trial_id, round_, True, n, n, 0)
        ranks = non_domination_ranks(np.array([rung[i] for i in ids], dtype=float))
        mine = ranks[ids.index(trial_id)]
        better = int((ranks < mine).sum())
        keep = n // self.config.eta
        return Decision(trial_id, round_, better < keep, n, keep, better)

    def stopped(self) -> dict[str, Decision]:
        """trial -> the decision that stopped it."""
        return {t: d for (t, _r), d in self.decisions.items() if not d.go_on}

    def to_dict(self) -> dict[str, Any]:
        return {"config": {"eta": self.config.eta, "min_rounds": self.config.min_rounds,
                           "coordinates": [list(c) for c in self.config.coordinates]},
                "records": {str(r): {t: [None if math.isinf(v) else v for v in c] for t, c in trials.items()}
                            for r, trials in self.records.items()},
                "decisions": [{"trial_id": d.trial_id, "rung": d.rung, "go_on": d.go_on, "at_rung": d.at_rung, "keep": d.keep,
                               "better": d.better} for d in self.decisions.values()]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SuccessiveHalving":
        c = d["config"]
        config = HalvingConfig(int(c["eta"]), int(c["min_rounds"]), tuple((str(m), str(o)) for m, o in c["coordinates"]))
        records = {int(r): {t: [math.inf if v is None else float(v) for v in coords] for t, coords in trials.items()}
                   for r, trials in d.get("records", {}).items()}
        decisions = {(str(x["trial_id"]), int(x["rung"])): Decision(str(x["trial_id"]), int(x["rung"]), bool(x["go_on"]),
                                                                   int(x["at_rung"]), int(x["keep"]), int(x["better"]))
                     for x in d.get("decisions", [])}
        return cls(config, records, decisions)


def non_domination_ranks(losses: np.ndarray) -> np.ndarray:
    """Front index of each row (0 = non-dominated) of a (rows, objectives) loss matrix; rows with
    +inf take part as the worst value. moocore's public non-dominated sorting (`pareto_rank`)."""
    if len(losses) == 0:
        return np.zeros(0, dtype=int)
    finite = np.where(np.isfinite(losses), losses, np.finfo(float).max)
    return np.asarray(moocore.pareto_rank(finite), dtype=int)

