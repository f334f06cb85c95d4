"""Fixtures for the analysis tests: sweep directories built with the results store's own writer.

The hand-built sweeps come from tests/results/sweep_factory.py (known front, hypervolume and
queries). Every trial checkpoint is a real, saved tiny solver, so export round trips load it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "results"))  # sweep_factory

from sweep_factory import make_sweep


@pytest.fixture(scope="session")
def tiny_solver_dir(tmp_path_factory) -> Path:
    """An untrained tiny-preset solver saved like the chain saves a round (config, weights, tokenizer)."""
    from raykd.data import generate_problems
    from raykd.task.io import save_solver
    from raykd.task.teacher import SolverSpec, build_solver_from_spec

    model, tokenizer = build_solver_from_spec(SolverSpec(preset="tiny"), generate_problems(50))
    return save_solver(model, tokenizer, tmp_path_factory.mktemp("solver") / "round-02")


@pytest.fixture(scope="session")
def demo_sweep(tmp_path_factory, tiny_solver_dir) -> Path:
    """The factory sweep (8 trials, known front t0..t3) with checkpoints and an Optuna journal.
    Read-only for the tests: copy it before changing anything."""
    return make_sweep(tmp_path_factory.mktemp("runs"), "demo", solver_dir=tiny_solver_dir)
