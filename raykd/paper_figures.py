"""Figures quoted from the paper (Yu et al. 2025, ATHENA-base), as given in shared/method.md §4: the one copy.

Quoted, never measured: tables print them in their own columns marked (Q).
"""

from __future__ import annotations

from typing import Any

SOURCE = "Yu et al. 2025 (ATHENA-base, RoBERTa-base encoder), quoted from shared/method.md §4"

# Table 1: ratio -> accuracy, params↓, speed↑, FLOPs↓ (percent).
TABLE1: dict[str, dict[float, dict[str, float]]] = {
    "math23k": {
        0.0: {"accuracy": 84.4, "params": 0.0, "speed": 0.0, "flops": 0.0},
        0.2: {"accuracy": 84.2, "params": 12.5, "speed": 18.4, "flops": 12.3},
        0.25: {"accuracy": 84.0, "params": 15.8, "speed": 22.7, "flops": 15.2},
        0.3: {"accuracy": 83.7, "params": 18.7, "speed": 27.5, "flops": 17.5},
    },
    "asdiv-a": {
        0.0: {"accuracy": 86.4, "params": 0.0, "speed": 0.0, "flops": 0.0},
        0.2: {"accuracy": 86.1, "params": 13.2, "speed": 17.2, "flops": 11.5},
        0.25: {"accuracy": 85.9, "params": 16.2, "speed": 21.3, "flops": 14.8},
        0.3: {"accuracy": 85.5, "params": 19.5, "speed": 26.5, "flops": 17.2},
    },
}

# Table 3a (Math23k only, 25% of heads): alpha -> accuracy.
TABLE3A: dict[str, dict[float, float]] = {"math23k": {0.0: 83.1, 0.3: 83.8, 0.5: 84.0, 0.7: 83.5, 1.0: 71.2}}

# Table 4 (Math23k only, 25%): ablation name (as in plan.py) -> accuracy.
TABLE4: dict[str, dict[str, float]] = {
    "math23k": {
        "pruning-only": 83.6,
        "norm-only": 71.2,
        "entropy-only": 83.1,
        "response-only": 83.8,
        "feature-only": 83.9,
        "random": 81.5,
        "global": 82.9,
        "no-pruning": 84.5,
        "full": 84.0,
    }
}
# The paper's "attention-visualisation pruning" (83.6) is not specified well enough to re-implement.


def dataset_key(source: str) -> str | None:
    """The paper's name for a data set (`Problem.source`), or None when the paper has no figures."""
    key = source.lower().replace("_", "-")
    if key.startswith("asdiv"):
        return "asdiv-a"
    if key.startswith("math23k"):
        return "math23k"
    return None


def quoted(table: dict[str, Any], source: str) -> Any:
    key = dataset_key(source)
    return table.get(key) if key else None
