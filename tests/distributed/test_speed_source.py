"""A sweep that asks for the latency table's speed gets it for every trial, or a trial fails with
one line naming why: never a quiet switch to measured speed (issue 35, "No silent fallbacks").
Ray-free: the worker's inputs and the measure it builds, without starting a trial."""

from __future__ import annotations

import pytest

from raykd.distributed.worker import load_teacher_inputs
from raykd.errors import ConfigError
from raykd.measure.latency import TABLE_NAME

DATA = "synthetic:400:7"


@pytest.fixture
def teacher_without_table(synthetic_splits, tmp_path):
    """A saved (untrained: only its files matter here) tiny solver with no latency table."""
    from raykd.task.io import save_solver
    from raykd.task.teacher import SolverSpec, build_solver_from_spec

    model, tok = build_solver_from_spec(SolverSpec(preset="tiny"), synthetic_splits["train"])
    save_solver(model, tok, tmp_path / "teacher")
    assert not (tmp_path / "teacher" / TABLE_NAME).exists()
    return tmp_path / "teacher"


def test_a_table_sweep_whose_teacher_has_no_table_fails_naming_it(teacher_without_table):
    teacher = teacher_without_table
    config = {"task": {"name": "mwp"}, "data": DATA, "speed_source": "table"}
    with pytest.raises(ConfigError, match=f"speed.source is table but the sweep's teacher has no {TABLE_NAME}") as err:
        load_teacher_inputs(teacher, config)
    assert "\n" not in str(err.value)
    _, _, table = load_teacher_inputs(teacher, {**config, "speed_source": "measured"})
    assert table is None  # measured speed asked for: no table wanted
