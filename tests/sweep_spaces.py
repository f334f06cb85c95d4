"""Small sweep spaces for the Ray tests (they reuse the session's tiny teacher)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


# a small latency table and a one-process end-of-sweep re-timing: the same code paths as the defaults
# (60 rounds, 16 calibration shapes, 30 re-timing rounds in 3 processes) at a fraction of the CI time
TEST_SPEED: dict[str, Any] = {"rounds": 8, "calibration": 6, "retime_rounds": 4, "retime_sessions": 1}


def small_space(teacher_dir: Path, storage: Path, **overrides: Any) -> dict[str, Any]:
    space: dict[str, Any] = {
        "name": "t",
        "data": "synthetic:400:7",
        "teacher": {"path": str(teacher_dir)},
        "search": {"alpha": {"low": 0.0, "high": 1.0}, "p_max": {"low": 0.15, "high": 0.5}},
        "fixed": {"p_min": 0.05, "rounds": 2, "epochs_per_round": 1, "steps_per_round": 6, "lr": 0.001,
                  "calib_batches": 2, "latency_batch": 4, "latency_repeats": 3, "patience": 1},
        "num_samples": 2,
        "sampler": {"type": "tpe", "seed": 0, "n_startup_trials": 2},
        "speed": dict(TEST_SPEED),  # the `real_sweep` fixture deletes it and runs the defaults themselves
        "resources": {"workers": 1, "cpus_per_worker": 1, "concurrent_trials": 1},
        "storage": str(storage),
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(space.get(key), dict):
            space[key] = {**space[key], **value}
        else:
            space[key] = value
    return space


def write_space(path: Path, space: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(space))
    return path
