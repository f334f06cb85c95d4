"""The words, defaults and bounds of a space file, and how a refused number is shown.

Shared by the pydantic models of a space (`raykd.search.schema`) and `raykd.search.space`, which
imports those models only when it parses a space: pydantic and the models' construction cost
0.2-0.4 s, and every `raykd` command (`--help` too) imports `raykd.search.space` at start-up.
"""

from __future__ import annotations

from typing import Any

OBJECTIVE_METRICS = ("accuracy", "test_accuracy", "speedup", "ideal_speedup", "params", "flops", "memory_bytes", "latency_ms")
SAMPLERS = ("tpe", "nsga2", "gp", "random")
TOP_LEVEL = ("name", "task", "data", "teacher", "search", "fixed", "objectives", "sampler", "num_samples", "early_stop",
             "constraints", "resources", "storage", "seed", "speed")
SPEED_SOURCES = ("table", "measured")
SPEED_DEFAULTS: dict[str, Any] = {"source": "table", "rounds": 60, "retime_rounds": 30, "retime_sessions": 3, "table_cache": True,
                                  "calibration": 16}
"""A space's `speed` section when it says nothing (see `SweepSpace.speed`)."""
MAX_NUM_SAMPLES = 10_000
"""The most trials one sweep may ask for: more is a typo, not a plan (an integer past 2**63 made
Ray Tune start an "infinite" sweep)."""
SEED_MAX = 2**32 - 1


def number_text(value: Any) -> str:
    """A number as an error message shows it: short even when the input was 10**1000."""
    try:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**15:
            return f"{value:,}"
        return f"{value:.4g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(value)[:80]
    except OverflowError:
        return "a number of over 300 digits"
