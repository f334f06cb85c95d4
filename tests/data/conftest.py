"""Fixtures for the data-layer tests (row samples and file writers live in data_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_fixtures import SHARED_DATA


@pytest.fixture
def shared_data() -> Path:
    """The read-only real data sets next to the project; skips the test where they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not available at {SHARED_DATA}")
    return SHARED_DATA.resolve()
