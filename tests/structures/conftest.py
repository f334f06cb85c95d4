"""Fixtures for the head-surgery tests (helpers live in heads_fixtures.py)."""

import pytest
import torch
from heads_fixtures import Seq2Seq


@pytest.fixture
def seq2seq() -> Seq2Seq:
    torch.manual_seed(0)
    return Seq2Seq().eval()
