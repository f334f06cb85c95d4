"""Fixtures for the Ray tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sweep_spaces import small_space, write_space


@pytest.fixture
def space_file(tmp_path, tiny_teacher_dir):
    def make(**overrides: Any) -> Path:
        return write_space(tmp_path / "space.yaml", small_space(tiny_teacher_dir, tmp_path / "runs", **overrides))

    return make
