"""Fixtures for the latency-table tests: the session's tiny solver, its task and one valid batch."""

import pytest

from raykd.task.io import load_solver
from raykd.task.mwp import MWPTask


@pytest.fixture(scope="module")
def teacher_task_batch(tiny_teacher_dir, synthetic_splits):
    teacher, tok, _ = load_solver(tiny_teacher_dir)
    task = MWPTask(tok, teacher.vocab, synthetic_splits)
    batch = next(iter(task.batches("valid", 4)))
    return teacher, task, batch
