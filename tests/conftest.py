"""Shared fixtures: a small trained teacher on synthetic data (real training, no mocks)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

pytest_plugins = ["s3_endpoint"]  # s3_endpoint, s3_bucket: a real S3 endpoint (moto's server)


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test when the folder is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture(scope="session", autouse=True)
def _threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="session", autouse=True)
def _cache(tmp_path_factory):
    """raykd's per-machine caches (latency tables) go to a session directory, never the user's."""
    import os

    os.environ["RAYKD_CACHE"] = str(tmp_path_factory.mktemp("raykd-cache"))


@pytest.fixture(scope="session")
def synthetic_splits():
    from raykd.data import load_splits

    return load_splits("synthetic:400:7")


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory, synthetic_splits) -> Path:
    """A tiny-preset solver trained for a short, fixed budget and saved like `raykd teacher` does."""
    from raykd.task.teacher import SolverSpec, train_teacher
    from raykd.training import FitConfig

    out = tmp_path_factory.mktemp("teacher") / "tiny"
    train_teacher(synthetic_splits, SolverSpec(preset="tiny"), FitConfig(epochs=12, lr=2e-3, patience=12, seed=0), out, progress=False)
    return out


@pytest.fixture(scope="session")
def quick_teacher_dir(tmp_path_factory, synthetic_splits) -> Path:
    """A tiny-preset solver after 4 steps: real weights and a real checkpoint, for tests that need a
    model to prune or forecast rather than a good teacher (cheaper than `tiny_teacher_dir`)."""
    from raykd.task.teacher import SolverSpec, train_teacher
    from raykd.training import FitConfig

    out = tmp_path_factory.mktemp("quick_teacher") / "tiny"
    train_teacher(synthetic_splits, SolverSpec(preset="tiny"), FitConfig(epochs=1, max_steps=4, lr=2e-3, seed=0), out,
                  progress=False)
    return out


@pytest.fixture
def hidden_kind():
    """The hidden-size kind registered (structure and importance) for one test, then unregistered."""
    from raykd.method.importance.hidden import register_hidden_importance
    from raykd.method.importance.registry import unregister_importance
    from raykd.structures.hidden import register_hidden_structure
    from raykd.structures.registry import unregister_structure

    register_hidden_structure()
    register_hidden_importance()
    try:
        yield
    finally:
        unregister_importance("hidden")
        unregister_structure("hidden")


@pytest.fixture(scope="session")
def real_sweep(tmp_path_factory, tiny_teacher_dir) -> Path:
    """A real small sweep (local Ray; Tune + Optuna; 2 trials x 2 rounds; DDP over 2 workers),
    run once per session and shared by the sweep and analysis tests."""
    from sweep_spaces import small_space

    from raykd.cli.sweep import (
        sweep_then_retime as run_sweep,  # the sweep, then its front re-timed (as `raykd sweep`)
    )
    from raykd.search.space import parse_space

    storage = tmp_path_factory.mktemp("sweeps")
    raw = small_space(tiny_teacher_dir, storage, resources={"workers": 2, "cpus_per_worker": 1, "concurrent_trials": 1})
    del raw["speed"]  # the defaults: what `raykd sweep` does with a space that says nothing of speed
    space = parse_space(raw)
    import contextlib
    import io

    console = io.StringIO()  # what a person sees: kept beside the sweep for tests/distributed/test_sweep_console.py
    with contextlib.redirect_stdout(console):
        outcome = run_sweep(space, progress=True, log=lambda _m: None)
    (storage / "console.txt").write_text(console.getvalue())
    return Path(outcome.root)
